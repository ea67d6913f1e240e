#include "backends/engine_api/engine_requests.h"

#include <string>

#include "backends/engine_api/engine_backend.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::engine_api {
namespace {

TEST(EngineRequestsTest, CreateBodyCarriesEverything) {
  ContainerSpec spec;
  spec.image = "fastest/sandbox:0.1.0";
  spec.cmd = {"fastest-runner", "--once"};
  spec.env = {{"JOB_ID", "J1"}, {"A", "b=c"}};
  spec.labels = {{"fastest.job_id", "J1"}};
  spec.working_dir = "/workspace";
  spec.network_mode = "host";
  spec.runtime = "runc";
  spec.nano_cpus = 2000000000;
  spec.memory_bytes = 1 << 30;
  spec.pids_limit = 512;
  spec.ulimits = {{"nofile", 1024, 2048}};
  nlohmann::json body = BuildCreateBody(spec);
  EXPECT_EQ(body["Image"], "fastest/sandbox:0.1.0");
  EXPECT_EQ(body["Cmd"], nlohmann::json({"fastest-runner", "--once"}));
  EXPECT_EQ(body["Env"], nlohmann::json({"A=b=c", "JOB_ID=J1"}));
  EXPECT_EQ(body["Labels"]["fastest.job_id"], "J1");
  EXPECT_EQ(body["WorkingDir"], "/workspace");
  EXPECT_EQ(body["Tty"], false);
  const nlohmann::json& host = body["HostConfig"];
  EXPECT_EQ(host["NetworkMode"], "host");
  EXPECT_EQ(host["Runtime"], "runc");
  EXPECT_EQ(host["NanoCpus"], 2000000000);
  EXPECT_EQ(host["Memory"], 1 << 30);
  EXPECT_EQ(host["PidsLimit"], 512);
  EXPECT_EQ(host["Init"], true);
  EXPECT_EQ(host["AutoRemove"], false);
  EXPECT_EQ(host["Ulimits"][0]["Name"], "nofile");
  EXPECT_EQ(host["Ulimits"][0]["Soft"], 1024);
  EXPECT_EQ(host["Ulimits"][0]["Hard"], 2048);
  EXPECT_FALSE(host.contains("StorageOpt"));
}

TEST(EngineRequestsTest, CreateBodyOmitsUnsetLimits) {
  ContainerSpec spec;
  spec.image = "x";
  nlohmann::json host = BuildCreateBody(spec)["HostConfig"];
  EXPECT_FALSE(host.contains("NanoCpus"));
  EXPECT_FALSE(host.contains("Memory"));
  EXPECT_FALSE(host.contains("PidsLimit"));
  EXPECT_FALSE(host.contains("Ulimits"));
  EXPECT_FALSE(host.contains("Runtime"));
  EXPECT_TRUE(BuildCreateBody(spec)["Labels"].is_object());
}

TEST(EngineRequestsTest, Paths) {
  EXPECT_EQ(BuildCreatePath(""), "/containers/create");
  EXPECT_EQ(BuildCreatePath("fastest-job-1"), "/containers/create?name=fastest-job-1");
  EXPECT_EQ(BuildListPath({}), "/containers/json?all=1");
  // {"label":["a=1","fastest.job_id=J 1"]}
  EXPECT_EQ(BuildListPath({{"fastest.job_id", "J 1"}, {"a", "1"}}),
            "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3D1%22%2C%22fastest.job_id"
            "%3DJ%201%22%5D%7D");
  LogQuery query;
  EXPECT_EQ(BuildLogsPath("abc", query), "/containers/abc/logs?stdout=1&stderr=1&follow=0&tail=all");
  query.follow = true;
  query.tail = 10;
  query.stderr_stream = false;
  EXPECT_EQ(BuildLogsPath("abc", query), "/containers/abc/logs?stdout=1&stderr=0&follow=1&tail=10");
}

TEST(EngineRequestsTest, ContainerRefs) {
  EXPECT_TRUE(IsValidContainerRef("0123abcdef"));
  EXPECT_TRUE(IsValidContainerRef("fastest-job_1.x"));
  EXPECT_FALSE(IsValidContainerRef(""));
  EXPECT_FALSE(IsValidContainerRef("../images"));
  EXPECT_FALSE(IsValidContainerRef("a?b"));
  EXPECT_FALSE(IsValidContainerRef(std::string(129, 'a')));
}

TEST(EngineRequestsTest, ApiVersions) {
  EXPECT_LT(CompareApiVersions("1.40", "1.41"), 0);
  EXPECT_EQ(CompareApiVersions("1.41", "1.41"), 0);
  EXPECT_GT(CompareApiVersions("1.100", "1.41"), 0);
  EXPECT_GT(CompareApiVersions("2.0", "1.41"), 0);
}

TEST(EngineRequestsTest, ParsesDockerAndPodmanLists) {
  std::string docker = R"([{"Id":"abc","Names":["/fastest-job-1"],"State":"exited",
      "Status":"Exited (137) 2 seconds ago","Labels":{"fastest.job_id":"J1"}},
      {"Id":"def","Names":["/x"],"State":"running","Status":"Up 1 second","Labels":null}])";
  auto list = ParseContainerList(docker);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "abc");
  EXPECT_EQ((*list)[0].name, "fastest-job-1");
  EXPECT_EQ((*list)[0].state, "exited");
  EXPECT_EQ((*list)[0].exit_code, 137);
  EXPECT_EQ((*list)[0].labels.at("fastest.job_id"), "J1");
  EXPECT_EQ((*list)[1].state, "running");
  EXPECT_FALSE((*list)[1].exit_code.has_value());
  EXPECT_TRUE((*list)[1].labels.empty());

  std::string podman = R"([{"Id":"p1","Names":["p"],"State":"exited","Status":"Exited (3) now",
      "ExitCode":3,"Labels":{}}])";
  list = ParseContainerList(podman);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)[0].exit_code, 3);
  EXPECT_FALSE(ParseContainerList("{}").ok());
  EXPECT_FALSE(ParseContainerList("not json").ok());
}

TEST(EngineRequestsTest, ParsesInspect) {
  auto info = ParseInspect(R"({"Id":"abc","Name":"/n","State":{"Status":"exited","ExitCode":7},
      "Config":{"Labels":{"k":"v"}}})");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->name, "n");
  EXPECT_EQ(info->state, "exited");
  EXPECT_EQ(info->exit_code, 7);
  EXPECT_EQ(info->labels.at("k"), "v");
  info = ParseInspect(R"({"Id":"abc","State":{"Status":"running","ExitCode":0}})");
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->exit_code.has_value());
}

TEST(EngineRequestsTest, ExitCodeFromStatusText) {
  EXPECT_EQ(ExitCodeFromStatusText("Exited (0) 3 seconds ago"), 0);
  EXPECT_EQ(ExitCodeFromStatusText("Exited (143) About a minute ago"), 143);
  EXPECT_FALSE(ExitCodeFromStatusText("Up 2 seconds").has_value());
  EXPECT_FALSE(ExitCodeFromStatusText("Exited (x)").has_value());
}

TEST(EngineRequestsTest, ErrorMapping) {
  absl::Status s = EngineHttpError(EngineOp::kCreate, 404,
                                   R"({"message":"No such image: fastest/sandbox:9.9"})",
                                   "Docker", "fastest/sandbox:9.9");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("image fastest/sandbox:9.9 is missing"), std::string::npos);
  EXPECT_NE(s.message().find("tools/build_sandbox_image.sh"), std::string::npos);

  EXPECT_EQ(EngineHttpError(EngineOp::kInspect, 404, "{}", "Docker", "abc").code(),
            absl::StatusCode::kNotFound);
  s = EngineHttpError(EngineOp::kCreate, 409, R"({"message":"name already in use"})", "Podman",
                      "img");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("name already in use"), std::string::npos);
  s = EngineHttpError(EngineOp::kCreate, 500,
                      R"({"cause":"that name is already in use","message":"container create: )"
                      R"(the container name \"x\" is already in use by abc"})",
                      "Podman", "img");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_EQ(EngineHttpError(EngineOp::kStart, 500, R"({"message":"already in use"})", "Podman",
                            "abc")
                .code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(EngineHttpError(EngineOp::kCreate, 400, "{}", "Docker", "").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EngineHttpError(EngineOp::kList, 403, "{}", "Docker", "").code(),
            absl::StatusCode::kPermissionDenied);
  s = EngineHttpError(EngineOp::kStart, 500, R"({"message":"OCI runtime create failed"})",
                      "Docker", "abc");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("OCI runtime create failed"), std::string::npos);
  EXPECT_EQ(EngineMessage("  plain text \n"), "plain text");
}

TEST(EngineBackendMappingTest, SpecMapping) {
  EngineBackendOptions options;
  options.runtime = "runc";
  options.explicit_ulimits = true;
  options.nofile = 2048;
  core::SandboxSpec spec;
  spec.image = "img";
  spec.command = {"sh"};
  spec.pids_limit = 10000;
  spec.disk_bytes = 1 << 20;
  auto c = ContainerSpecFor(spec, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->network_mode, "none");  // the documented default: sealed
  EXPECT_EQ(c->runtime, "runc");
  EXPECT_EQ(c->disk_bytes, 0);  // no disk quota unless the storage driver allows it
  ASSERT_EQ(c->ulimits.size(), 2u);
  EXPECT_EQ(c->ulimits[0].name, "nofile");
  EXPECT_EQ(c->ulimits[0].hard, 2048);
  EXPECT_EQ(c->ulimits[1].name, "nproc");
  EXPECT_EQ(c->ulimits[1].soft, 10000);

  // Sealed: no capabilities beyond the runner's few, no privilege gain, read-only root, no swap.
  EXPECT_EQ(c->cap_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(c->cap_add, (std::vector<std::string>{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID",
                                                  "SETGID", "KILL"}));
  EXPECT_EQ(c->security_opt, std::vector<std::string>{"no-new-privileges"});
  EXPECT_TRUE(c->readonly_rootfs);
  EXPECT_EQ(c->tmpfs.at("/workspace"), "rw,exec,nosuid,nodev,mode=0755,size=1048576");
  EXPECT_TRUE(c->binds.empty());
  spec.memory_bytes = 1 << 30;
  spec.channel_dir = "/data/channels/j1";
  c = ContainerSpecFor(spec, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->memory_swap_bytes, 1 << 30);
  EXPECT_EQ(c->tmpfs.at("/tmp"), "rw,exec,nosuid,nodev,mode=1777,size=1073741824");
  EXPECT_EQ(c->binds, std::vector<std::string>{"/data/channels/j1:/run/fastest:ro"});
  nlohmann::json host = BuildCreateBody(*c)["HostConfig"];
  EXPECT_EQ(host["ReadonlyRootfs"], true);
  EXPECT_EQ(host["MemorySwap"], 1 << 30);
  EXPECT_EQ(host["CapDrop"][0], "ALL");
  EXPECT_EQ(host["SecurityOpt"][0], "no-new-privileges");
  EXPECT_EQ(host["Binds"][0], "/data/channels/j1:/run/fastest:ro");
  spec.channel_dir = "/a:/etc";
  EXPECT_EQ(ContainerSpecFor(spec, options).status().code(), absl::StatusCode::kInvalidArgument);
  spec.channel_dir = "";

  spec.network_mode = "host";
  EXPECT_EQ(ContainerSpecFor(spec, options)->network_mode, "host");
  spec.network_mode = "container:x";
  EXPECT_EQ(ContainerSpecFor(spec, options).status().code(), absl::StatusCode::kInvalidArgument);
  spec.network_mode = "";
  spec.image = "";
  EXPECT_EQ(ContainerSpecFor(spec, options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EngineBackendMappingTest, States) {
  EXPECT_EQ(SandboxState("running"), "running");
  EXPECT_EQ(SandboxState("exited"), "exited");
  EXPECT_EQ(SandboxState("stopped"), "exited");
  EXPECT_EQ(SandboxState("created"), "created");
  EXPECT_EQ(SandboxState("removing"), "unknown");
}

}  // namespace
}  // namespace fastest::backends::engine_api
