// File: server/api/run_result_json.h
//
// The wire form of a dispatched job's RunResult (PROTOCOLS §3.1, the worker's RunResult plus
// "status" and "exit_code"), answered by POST /v1/jobs/run-next and /v1/jobs/:id/run with wait.
#ifndef FASTEST_SERVER_API_RUN_RESULT_JSON_H_
#define FASTEST_SERVER_API_RUN_RESULT_JSON_H_

#include "nlohmann/json.hpp"
#include "server/dispatch/dispatcher.h"

namespace fastest::server {

nlohmann::json RunResultToJson(const RunResult& r);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_RUN_RESULT_JSON_H_
