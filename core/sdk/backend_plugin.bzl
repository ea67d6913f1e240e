"""fastest_backend_plugin: the one way to build a backend plugin .so (see core/sdk/backend_sdk.h)."""

load("@rules_cc//cc:defs.bzl", "cc_binary")
load("//bazel:backends.bzl", "FASTEST_BACKENDS")

_EXPORTS = "//core/sdk:plugin_exports.lds"

def fastest_backend_plugin(name, srcs, deps = [], copts = [], visibility = None, **kwargs):
    """Builds libfastest_backend_<name>.so exporting only fastest_backend_entry.

    Args:
      name: the backend name; the target is ":libfastest_backend_<name>.so".
      srcs: the .cc file(s) holding FASTEST_DEFINE_BACKEND.
      deps: the backend's cc_library targets (//core/sdk:backend_sdk is added).
      copts: extra compiler options.
      visibility: visibility of the .so target.
      **kwargs: passed to cc_binary (e.g. testonly, tags).
    """
    if native.package_name().startswith("backends/") and name not in FASTEST_BACKENDS:
        fail("backend plugin %r is not in bazel/backends.bzl; add it there so the server, the " % name +
             "e2e suite and the benchmarks pick it up")
    cc_binary(
        name = "libfastest_backend_%s.so" % name,
        srcs = srcs,
        copts = ["-fvisibility=hidden"] + copts,
        linkshared = True,
        linkopts = ["-Wl,--version-script=$(location %s)" % _EXPORTS],
        additional_linker_inputs = [_EXPORTS],
        visibility = visibility,
        deps = deps + ["//core/sdk:backend_sdk"],
        **kwargs
    )
