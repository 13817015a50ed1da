"""The Lab view: the educator's distillation lab."""
