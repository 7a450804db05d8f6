// dfly: the command-line front end. Each noun lives in its own cmd_<noun>.cpp and
// registers its verbs here; main() only parses and runs the chosen verb.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <utility>
#include <vector>

#include "cli.h"

namespace dfly::cli {

int fail(const std::string& what, const std::string& why) {
  std::fprintf(stderr, "dfly: %s: %s\n", what.c_str(), why.c_str());
  return 1;
}

int fail(const std::string& what, const Error& e) {
  return fail(what, e.to_string());
}

namespace {
// A function-local static: registrars in other files may run before this file's
// globals are initialised.
std::vector<std::pair<int, AddNoun>>& nouns() {
  static std::vector<std::pair<int, AddNoun>> v;
  return v;
}
}  // namespace

NounRegistrar::NounRegistrar(int order, AddNoun add) {
  nouns().emplace_back(order, add);
}

void add_registered_nouns(CLI::App& app, Action& action) {
  auto& v = nouns();
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, add] : v) add(app, action);
}

}  // namespace dfly::cli

int main(int argc, char** argv) {
  CLI::App app{
      "dfly: DragonFly BSD's 1.5 plans (message-passing network stack, CCMS, ZFS) in userland"};
  app.set_version_flag("--version", std::string("dfly ") + DFLY_VERSION);
  app.require_subcommand(1);
  dfly::cli::Action action;
  dfly::cli::add_registered_nouns(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 phrases the reason; we keep the "dfly: <what>: <why>" shape.
    std::fprintf(stderr, "dfly: usage: %s\n", e.what());
    std::fprintf(stderr, "Run with --help for more information.\n");
    return 2;
  }
  if (!action) return dfly::cli::fail("usage", "no command given");
  return action();
}
