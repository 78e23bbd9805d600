"""One small module per resource agent, each a thin layer over the OCF runner."""
