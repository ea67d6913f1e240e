"""The one list of in-tree sandbox backends.

Adding a backend: create backends/<name>/ with a fastest_backend_plugin(name = "<name>", ...)
(//core/sdk:backend_plugin.bzl refuses an in-tree plugin missing here), then add a row below.
Everything that needs every backend reads this list:
  - the plugin .so targets (checked by fastest_backend_plugin),
  - //tests/e2e: one e2e_<name>_test per backend,
  - //tools/bench: the benchmarks' data,
  - //server:fastest-server: its data, so building the server builds every plugin.
"""

# name -> what its tests need: the Bazel tags that say which engine must run, and runfiles
# beyond the plugin itself.
FASTEST_BACKENDS = {
    "docker": struct(
        tags = ["requires-docker"],
        extra_data = [],
    ),
    "podman": struct(
        tags = ["requires-podman"],
        extra_data = [],
    ),
    # The Cloudflare bridge cannot run here: tests drive the plugin against the bridge emulator,
    # which runs its sandboxes on local Docker.
    "cloudflare": struct(
        tags = ["requires-docker"],
        extra_data = ["//tools/cf_bridge_emulator:cf-bridge-emulator"],
    ),
}

BACKEND_NAMES = sorted(FASTEST_BACKENDS.keys())

def backend_plugin(name):
    """The label of backend `name`'s plugin .so."""
    return "//backends/%s:libfastest_backend_%s.so" % (name, name)

# Every in-tree plugin .so.
BACKEND_PLUGINS = [backend_plugin(name) for name in BACKEND_NAMES]

def backend_test_data(name):
    """What a test that loads backend `name` needs at run time: its plugin and its helpers."""
    return [backend_plugin(name)] + FASTEST_BACKENDS[name].extra_data

def backend_test_tags(name):
    """The tags of a test that runs sandboxes through backend `name`."""
    return FASTEST_BACKENDS[name].tags
