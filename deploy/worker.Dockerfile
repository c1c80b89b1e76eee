# syntax=docker/dockerfile:1
#
# twinplatform worker image: the `platform` CLI with torch, for GPU workers (default) or CPU-only containers.
#
# UNTESTED: written on development machines that have no Docker engine and no GPU; it has only been linted
# (hadolint). Build it and run the checks in docs/deployment.md ("First deployment checklist") before use.
#
# Build from the repository root (the build context must be the whole clone: migrations/ and alembic.ini live
# there, and the platform runs them from its source tree):
#   GPU: docker build -f deploy/worker.Dockerfile -t twinplatform:gpu .
#   CPU: docker build -f deploy/worker.Dockerfile -t twinplatform:cpu \
#          --build-arg TORCH_VARIANT=cpu --build-arg BASE_IMAGE=ubuntu:24.04 .
# deploy/worker.Dockerfile.dockerignore keeps .venv, .git, caches and deploy/.env out of the context (BuildKit).
#
# GPU variant: torch 2.13.0's default Linux wheel is built for CUDA 13.0 and brings its CUDA libraries as pip
# packages; the host needs an NVIDIA driver new enough for CUDA 13.0 and the NVIDIA Container Toolkit. The base
# image matches that CUDA version, so no second, different CUDA runtime sits on the library path.

ARG BASE_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

# cuda: torch's default wheel from PyPI (the CUDA build). cpu: the CPU build from TORCH_CPU_INDEX_URL.
ARG TORCH_VARIANT=cuda
ARG TORCH_VERSION=2.13.0
ARG TORCH_CPU_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 (Ubuntu 24.04 ships 3.12) from the deadsnakes PPA. ffmpeg needs no system package: it comes from
# the imageio-ffmpeg wheel and PyAV. Packages are not version-pinned: they follow the base image's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gpg-agent software-properties-common \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
 && apt-get purge -y --auto-remove gpg-agent software-properties-common \
 && rm -rf /var/lib/apt/lists/*

RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch BEFORE the platform: pyproject.toml has torch only in the optional `ml` extra (torch>=2.4), so the
# platform install below neither replaces this build nor pulls a second one. The check fails the build if the
# variant is wrong (no GPU is needed for it: torch.version.cuda is the build's CUDA version).
RUN if [ "$TORCH_VARIANT" = "cpu" ]; then \
        pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_CPU_INDEX_URL}"; \
    elif [ "$TORCH_VARIANT" = "cuda" ]; then \
        pip install "torch==${TORCH_VERSION}"; \
    else \
        echo "TORCH_VARIANT must be cuda or cpu, not '${TORCH_VARIANT}'" >&2; exit 1; \
    fi \
 && python -c "import sys, torch; cuda = torch.version.cuda; print('torch', torch.__version__, 'CUDA', cuda); \
sys.exit(0 if (cuda is None) == ('${TORCH_VARIANT}' == 'cpu') else 'torch build does not match TORCH_VARIANT')"

# The platform from the clone, editable: its migrations are read from /opt/twinplatform/migrations at run time.
WORKDIR /opt/twinplatform
COPY . .
RUN pip install -e ".[face,ml,speech]" \
 && pip install --no-deps -r requirements/no-deps.txt \
 && python -m compileall -q platform pipelines storage_layout migrations \
 && platform --help > /dev/null

# Non-root. /var/lib/twinplatform holds the data folder and the mirror (mount a volume there); an empty named
# volume takes this ownership on first mount.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/twin --shell /usr/sbin/nologin twin \
 && mkdir -p /var/lib/twinplatform/mirror \
 && chown -R twin:twin /var/lib/twinplatform
ENV PLATFORM_DATA_DIR=/var/lib/twinplatform \
    PLATFORM_MIRROR_DIR=/var/lib/twinplatform/mirror
USER 10001:10001
WORKDIR /var/lib/twinplatform

# SIGTERM (docker stop) starts a warm shutdown: the running stage finishes first. Give the container a stop
# timeout of at least PLATFORM_MAX_STAGE_S (compose: stop_grace_period).
ENTRYPOINT ["platform"]
CMD ["worker", "--queues", "gpu"]
