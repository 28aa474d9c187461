"""`sam local` without a Docker installation or a container registry: a private Docker engine
(engine.py) and a locally built stand-in for the Lambda python3.13 base image (image.py).

`make sam-local-up` / `make sam-local-down` drive it for a user; tests/sam_local drives it for the suite.
"""
