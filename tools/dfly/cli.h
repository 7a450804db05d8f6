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

// Each noun (one cmd_<noun>.cpp) adds its subcommand and verbs; the chosen verb
// stores its action. A noun registers itself at static-initialisation time:
//   DFLY_CLI_NOUN(30, add_stack);
// `order` sorts the nouns in --help (lower first); main() knows no noun by name.
using AddNoun = void (*)(CLI::App& app, Action& action);
struct NounRegistrar {
  NounRegistrar(int order, AddNoun add);
};
void add_registered_nouns(CLI::App& app, Action& action);

#define DFLY_CLI_NOUN(order, fn)                               \
  static const ::dfly::cli::NounRegistrar dfly_cli_noun_##fn { \
    (order), (fn)                                              \
  }

}  // namespace dfly::cli
