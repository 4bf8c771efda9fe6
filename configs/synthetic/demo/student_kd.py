"""`make demo`'s distilled student: student_alone.py's model, data, schedule and iterations, with KD-DETR
from teacher.py's trained model (output/demo/teacher) as the shipped pair configs set it up."""
from ..fast_students.dino_r50_r18_enc1_dec2 import model
from .student_alone import dataloader, lr_multiplier, optimizer, train, user_dataset  # noqa: F401
from .teacher import model as teacher

model.teacher = teacher
model.teacher_weights = "output/demo/teacher/model_final.pth"
train.output_dir = "./output/demo/student"
