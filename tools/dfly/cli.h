// Shared conventions of the dfly CLI (see README "CLI conventions"):
//   - `dfly <noun> <verb>`, --help everywhere, --json for machine output;
//   - errors go to stderr as "dfly: <what>: <why>" and the exit status is non-zero;
//   - exit 0 only on success.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "base/result.h"

namespace dfly::cli {

// A verb's action: returns 0 on success or an exit status after printing an error.
using Action = std::function<int()>;

// Prints "dfly: what: why" to stderr; returns exit status 1.
int fail(const std::string& what, const std::string& why);
int fail(const std::string& what, const Error& e);

// Each noun adds its subcommand and verbs; the chosen verb stores its action.
void add_lwkt(CLI::App& app, Action& action);
void add_ccms(CLI::App& app, Action& action);
void add_stack(CLI::App& app, Action& action);

}  // namespace dfly::cli
