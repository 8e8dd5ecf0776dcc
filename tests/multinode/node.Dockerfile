# A swarm worker node for the multi-node tests: Debian's Docker engine in a container
# (docker-in-docker), built from the project's debian:bookworm-slim base. socat makes the
# manager's registry reachable at 127.0.0.1:REGISTRY_PORT, the address the stack files name.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      docker.io=20.10.* iptables socat ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The inner engine's layers on a volume: overlay2 does not stack on the outer overlay2.
VOLUME /var/lib/docker
CMD ["sh", "-c", "socat TCP-LISTEN:${REGISTRY_PORT},fork,reuseaddr,bind=127.0.0.1 TCP:${MANAGER_ADDR}:${REGISTRY_PORT} & exec dockerd --cgroup-parent=/usbills-node-$(hostname)"]
