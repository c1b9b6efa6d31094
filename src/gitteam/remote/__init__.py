"""The distributed mode's ref protocol: runs published to a git remote, claimed and worked by workers anywhere.

`refs` names the refs, `documents` is their JSON, `lease` judges expiry on this process's clock, `protocol`
is the `Remote` that fetches, publishes, claims, renews and finishes, each in one git call. Only git: the run's
machinery (run/remote_coder.py, run/worker.py) builds on it.
"""
