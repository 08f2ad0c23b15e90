# The production deployment (docker/compose.yaml) on this machine: podman and
# podman-compose from Debian, the container settings these machines need, and
# the local base image (no image registry is reachable here). Not part of
# ./dev up: tests/deploy/ calls `deploy_setup` (through `./dev deploy-setup`
# or sourced), so a fresh machine gets everything on its first test run.
# Measured facts: ../shared/notes/containers-here.md.

DEPLOY_BASE_IMAGE=${DEPLOY_BASE_IMAGE:-localhost/debian:bookworm}

deploy_setup() {
    # dnsname: services find each other by name on the compose network (a
    # recommends of podman, which apt_install leaves out)
    apt_install podman podman-compose debootstrap runc uidmap slirp4netns \
        golang-github-containernetworking-plugin-dnsname
    _deploy_containers_conf
    _deploy_base_image
}

# crun cannot set RLIMIT_NOFILE/NPROC here and refuses the hybrid cgroups:
# runc and cgroupfs, no default ulimits. Written once, kept if already there.
_deploy_containers_conf() {
    local conf=/etc/containers/containers.conf
    if [ -f "$conf" ] && grep -q '^runtime = "runc"' "$conf"; then return 0; fi
    [ "$(id -u)" -eq 0 ] || die "need root to write $conf"
    mkdir -p /etc/containers
    [ -f "$conf" ] && cp "$conf" "$conf.emboux-orig"
    cat >"$conf" <<'CONF'
# written by EmBoux scripts/dev/stack-deploy.sh (see ../shared/notes/containers-here.md)
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
}

# localhost/debian:bookworm from the Debian mirror of this machine's apt
# sources (debootstrap, about 90 s), once per machine.
_deploy_base_image() {
    podman image exists "$DEPLOY_BASE_IMAGE" && return 0
    local mirror rootfs
    mirror=$(grep -rhoE '^(URIs:|deb) *https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -oE 'https?://[^ ]+' | head -1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/emboux-rootfs.XXXXXX")
    say "making $DEPLOY_BASE_IMAGE with debootstrap from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$LOG/debootstrap.log" 2>&1 \
        || { rm -rf "$rootfs"; die "debootstrap failed (see $LOG/debootstrap.log)"; }
    # the image's apt sources: the same mirror, with security updates
    echo "deb $mirror bookworm main" >"$rootfs/etc/apt/sources.list"
    tar -C "$rootfs" -c . | podman import - "$DEPLOY_BASE_IMAGE" >/dev/null \
        || { rm -rf "$rootfs"; die "podman import failed"; }
    rm -rf "$rootfs"
}
