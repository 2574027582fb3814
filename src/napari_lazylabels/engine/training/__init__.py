"""Training: patch sampling, losses, the trainer and the reports it yields."""
