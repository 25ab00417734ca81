"""Running the project as a deployment: the instance, the processes `make serve` starts and
stops, and the run launcher that notices a dead run worker. docs/operations.md, "Deploying"."""
