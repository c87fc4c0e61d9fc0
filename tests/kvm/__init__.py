"""A Linux kernel client in a qemu VM, for the protocol tests: the appliance's kernel with a small busybox
initramfs (NFS and SMB client modules, rpcbind and rpc.statd for NFS locks) boots under TCG, runs one shell
script and powers off; see ``guest.py``."""
