# Shared by bench/OpenLatency's scripts (sourced): a work directory with the C opener and responder built in it, the
# two filesystems (protected and bare twin), one listener at a time, and cleaning up whatever happens.
# Expects: here (this directory), fs (ext4 or tmpfs), fs_size (e.g. 64M), work_prefix.
work=$(mktemp -d "/tmp/$work_prefix.XXXXXX")
listener=""
cleanup() {
  if [ -n "$listener" ]; then kill "$listener" 2>/dev/null || true; wait "$listener" 2>/dev/null || true; fi
  umount -l "$work/protected" 2>/dev/null || true
  umount -l "$work/bare" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

gcc -O2 -o "$work/opener" "$here/opener.c"
gcc -O2 -o "$work/responder" "$here/responder.c"

make_fs() { # mount point: a fresh filesystem of its own
  mkdir "$1"
  if [ "$fs" = tmpfs ]; then
    mount -t tmpfs -o "size=$fs_size" onaccess-bench "$1"
  else
    truncate -s "$fs_size" "$1.img"
    mkfs.ext4 -q -F "$1.img"
    mount -o loop "$1.img" "$1" # the loop device is released with the unmount
  fi
}

wait_ready() { # file pattern
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "listener did not become ready: $(cat "$1")" >&2; exit 1
}

stop_listener() {
  kill -TERM "$listener" 2>/dev/null || true # background jobs of a script ignore SIGINT
  wait "$listener" 2>/dev/null || true
  listener=""
}
