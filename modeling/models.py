"""Models of the modeling app: model versions, training runs and suggestions."""
