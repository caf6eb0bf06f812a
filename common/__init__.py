"""What every PixelFlow service shares: settings, logging, errors and the gRPC server bootstrap.

Imported before gRPC by every process of ours (the services, the launcher, the tests and the
benchmarks import a package that imports this one first), so the setting below is in place
when gRPC reads it.
"""

import os

# gRPC's fork handlers restart its poller in a forked child. A child that then closes file
# descriptors before exec (subprocess.Popen with close_fds, multiprocessing's forkserver and
# resource tracker) aborts with "epoll_wait error: Bad file descriptor" (grpc/grpc#43055).
# Seen here: worker_svc "exited with code -6 before it was ready", 2 of ~30 starts under load,
# when the launcher (which holds gRPC channels for health checks) started it. No process of
# ours forks to use gRPC in the child, so the handlers are off; set the variable to override.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
