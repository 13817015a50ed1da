"""The educator's distillation lab: a teacher labels tasks, a student learns from it, compare."""
