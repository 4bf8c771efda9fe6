# Convenience: run the project's targets from the repository root.
.PHONY: setup test demo train-synthetic
setup test demo train-synthetic:
	$(MAKE) -C projects/KDDETR $@
