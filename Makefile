# Tessera — the two commands of the quick start, and a few helpers.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ./tessera-data
export TESSERA_DATA ?= $(DATA)

.PHONY: run test venv deps lint typecheck unit bench containers image image-test clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python

# what serving needs: the package (editable) and its runtime dependencies, nothing else (make run)
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# on top of that, what the tests need (every target but run)
# torch first, pinned to the local CPU build, so the [torch] range never pulls a newer one
$(VENV)/.installed: $(VENV)/.runtime
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,torch]'
	touch $@

# system packages: S3 clients, NFS clients (libnfs), NFS-Ganesha and rpcbind for the NFS tests and benchmarks,
# podman for the containers, and what builds and boots the appliance image
deps: $(VENV)/.installed
	@bash .ci/system-deps.sh rclone smbclient samba libnfs-utils nfs-ganesha nfs-ganesha-vfs rpcbind nfs-common gcc libc6-dev iproute2 procps \
	  podman runc mmdebstrap uidmap \
	  qemu-system-x86 ipxe-qemu squashfs-tools xorriso grub-common grub-pc-bin grub-efi-amd64-bin mtools \
	  busybox-static cpio e2fsprogs file postgresql patroni etcd-server etcd-client

# serves S3, NFS and SMB (on nfs.user_listen / smb.user_listen when not root: printed at start) and the admin endpoint
run: $(VENV)/.runtime
	@[ -f "$(TESSERA_DATA)/meta/meta.db" ] || $(BIN)/tessera init --data "$(TESSERA_DATA)"
	$(BIN)/tessera serve --data "$(TESSERA_DATA)"

lint: $(VENV)/.installed
	$(BIN)/ruff check core gateway protocols tests bench image

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest -q

test: deps lint typecheck unit image-test

# container images (mmdebstrap base, host-downloaded wheels, podman build --pull=never)
containers: $(VENV)/.installed
	PY=$(BIN)/python bash image/build.sh containers

# the bootable appliance: containers, root fs, preloaded images, squashfs, initramfs, PXE files + ISO
image: deps
	PY=$(BIN)/python bash image/build.sh image

# boot the image under qemu (TCG): ISO with two target disks + reboot persistence, then PXE via iPXE
# ... and the kernel's own NFS and SMB clients (a small guest on the appliance's kernel) against the servers
image-test: image
	$(BIN)/pytest -q -m appliance tests/image/test_boot.py tests/kvm tests/protocols/nfs/test_kernel_client.py \
		tests/protocols/smb/test_kernel_client.py

bench: $(VENV)/.installed
	$(BIN)/python bench/core.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
