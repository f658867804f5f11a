// The documents tell the truth about the binary:
// - docs/API.md's route index and docs/openapi.json list the same routes;
// - README.md quotes every C++ example of docs/examples/ verbatim (the build
//   compiles those files, so the README's code compiles);
// - every relative link of README.md and docs/*.md names a file of the
//   repository;
// - the README's shell walk-throughs run as written (against the real binary
//   on a free port: `localhost:8080` and the fake gateway's `PORT` are the
//   only substitutions) and print what their comments say;
// - its console transcripts (the restore drill) print what they show, and
//   its install and upgrade steps run into a staging root.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/harness.h"

namespace {

namespace fs = std::filesystem;

const fs::path kSource = AFTERCOMMIT_SOURCE_DIR;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// The fenced blocks of a Markdown text whose info string is `lang`.
std::vector<std::string> fenced_blocks(const std::string& markdown, const std::string& lang) {
  std::vector<std::string> blocks;
  std::istringstream in(markdown);
  std::string line;
  std::string block;
  bool inside = false;
  bool wanted = false;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) {
      if (!inside) {
        inside = true;
        wanted = line.substr(3) == lang;
        block.clear();
      } else {
        inside = false;
        if (wanted) blocks.push_back(block);
      }
      continue;
    }
    if (inside) block += line + "\n";
  }
  return blocks;
}

// One command of a walk-through and what its comments promise.
struct Step {
  std::string command;                // as written (continuation lines joined by sh)
  std::vector<std::string> expected;  // its trailing comment and the comment lines after it
};

// Splits an sh block into steps: each command with the comments that go
// with it. A comment block right under a command (no blank line between)
// describes that command's output; one after a blank line, or at the top,
// introduces the next command. `make run` lines are what the harness does.
std::vector<Step> steps_of(const std::string& block) {
  std::vector<Step> steps;
  std::vector<std::string> pending;  // comments waiting for the next command
  std::istringstream in(block);
  std::string line;
  bool continuing = false;
  bool in_quote = false;
  bool under_command = false;  // the last line read belongs to a command or its output comments
  while (std::getline(in, line)) {
    if (!continuing && !in_quote) {
      if (line.empty()) {
        under_command = false;
        continue;
      }
      if (line.rfind("make ", 0) == 0) continue;
      if (line.rfind("#", 0) == 0) {
        if (under_command && !steps.empty()) {
          steps.back().expected.push_back(line.substr(1));
        } else {
          pending.push_back(line.substr(1));
        }
        continue;
      }
      steps.push_back(Step{});
      steps.back().expected = std::move(pending);
      pending.clear();
    }
    Step& step = steps.back();
    step.command += line + "\n";
    for (char c : line) {
      if (c == '\'') in_quote = !in_quote;
    }
    continuing = !line.empty() && line.back() == '\\';
    if (!continuing && !in_quote) {
      under_command = true;
      // A trailing comment after at least two spaces is an expectation.
      const auto hash = line.find("  # ");
      if (hash != std::string::npos) step.expected.push_back(line.substr(hash + 3));
    }
  }
  return steps;
}

// The promises a comment makes that the output must keep: a status line
// ("HTTP/1.1 201 Created", or a leading "422"), a problem type, and the
// JSON members written out with a concrete value. Returns the broken ones.
std::vector<std::string> broken_promises(const std::string& output, const std::string& comment) {
  std::vector<std::string> broken;
  auto expect = [&](const std::string& needle) {
    if (output.find(needle) == std::string::npos) broken.push_back(needle);
  };
  std::smatch m;
  const auto first = comment.find_first_not_of(' ');
  const std::string text = first == std::string::npos ? "" : comment.substr(first);
  if (std::regex_search(text, m, std::regex(R"(^HTTP/1\.1 (\d{3}))"))) {
    expect("HTTP/1.1 " + m[1].str());
  } else if (std::regex_search(text, m, std::regex(R"(^(\d{3})( |$))"))) {
    expect("HTTP/1.1 " + m[1].str());
  }
  if (std::regex_search(text, m, std::regex(R"((/problems/[a-z-]+))"))) expect(m[1].str());
  static const std::set<std::string> kVarying = {"created_at",  "at",        "run_at",
                                                 "finished_at", "charge_id", "ts"};
  const std::regex member(R"re("([a-z_]+)": ?("[^"]*"|-?\d+|true|false|null))re");
  for (std::sregex_iterator it(text.begin(), text.end(), member), end; it != end; ++it) {
    const std::string key = (*it)[1].str();
    const std::string value = (*it)[2].str();
    if (kVarying.count(key) || value.find("...") != std::string::npos) continue;
    expect("\"" + key + "\":" + value);
  }
  if (text.rfind("Idempotent-Replayed: true", 0) == 0) expect("Idempotent-Replayed: true");
  if (std::regex_search(text, m, std::regex("prints `([^`]+)`"))) expect(m[1].str());
  return broken;
}

std::vector<std::string> broken_promises(const std::string& output, const Step& step) {
  std::vector<std::string> broken;
  for (const auto& comment : step.expected) {
    for (auto& b : broken_promises(output, comment)) broken.push_back(std::move(b));
  }
  return broken;
}

// Runs `command` in sh after `prelude` (the assignments before it, such as
// $BODY and $GW); returns what it printed on stdout and stderr.
std::string run_shell(const testing::TempDir& dir, const std::string& prelude,
                      const std::string& command, int* exit_code = nullptr) {
  const std::string script_path = dir.file("step.sh");
  std::ofstream(script_path) << prelude << command;
  const std::string out_path = dir.file("step.out");
  const int rc = std::system(
      ("sh " + testing::shell_quote(script_path) + " > " + testing::shell_quote(out_path) + " 2>&1")
          .c_str());
  if (exit_code) *exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return read_file(out_path);
}

}  // namespace

TEST_CASE("docs/API.md's route index lists exactly the routes docs/openapi.json describes") {
  const auto openapi = nlohmann::json::parse(read_file(kSource / "docs/openapi.json"));
  std::set<std::string> documented;
  std::set<std::string> documented_guarded;  // those naming the bearer scheme
  for (const auto& [path, ops] : openapi["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      if (method == "get" || method == "post" || method == "put" || method == "delete") {
        std::string upper = method;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        documented.insert(upper + " " + path);
        if (op.contains("security") &&
            op["security"].dump().find("adminToken") != std::string::npos)
          documented_guarded.insert(upper + " " + path);
      }
    }
  }
  const std::string api = read_file(kSource / "docs/API.md");
  REQUIRE(api.find("## Route index") != std::string::npos);
  const std::string index = api.substr(api.find("## Route index"));
  std::set<std::string> listed;
  std::set<std::string> listed_guarded;  // "yes" in the token column
  const std::regex row(R"(\| `([A-Z]+)` \| `([^`]+)` \| *(yes)? *\|)");
  for (std::sregex_iterator it(index.begin(), index.end(), row), end; it != end; ++it) {
    listed.insert((*it)[1].str() + " " + (*it)[2].str());
    if ((*it)[3].matched) listed_guarded.insert((*it)[1].str() + " " + (*it)[2].str());
  }
  CHECK(listed == documented);
  CHECK(listed_guarded == documented_guarded);
  CHECK(listed_guarded.size() >= 5);
  CHECK(documented.size() >= 20);
}

TEST_CASE("README.md quotes every docs/examples file verbatim, and nothing else as C++") {
  const std::string readme = read_file(kSource / "README.md");
  const auto blocks = fenced_blocks(readme, "cpp");
  std::set<std::string> quoted(blocks.begin(), blocks.end());
  int examples = 0;
  for (const auto& entry : fs::directory_iterator(kSource / "docs/examples")) {
    if (entry.path().extension() != ".cpp") continue;
    CAPTURE(entry.path().string());
    CHECK(quoted.count(read_file(entry.path())) == 1);
    ++examples;
  }
  CHECK(examples >= 1);
  CHECK(blocks.size() == static_cast<std::size_t>(examples));  // no C++ the build does not compile
}

TEST_CASE("every excerpt the README quotes is still verbatim in the file it names") {
  // "```cpp excerpt db/products.cpp": the block is part of that file as it is.
  const std::string readme = read_file(kSource / "README.md");
  const std::regex opening(R"(^```\w+ excerpt (\S+)$)");
  std::istringstream in(readme);
  int excerpts = 0;
  std::string path;
  std::string block;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!inside && std::regex_match(line, m, opening)) {
      inside = true;
      path = m[1].str();
      block.clear();
      continue;
    }
    if (inside && line == "```") {
      inside = false;
      ++excerpts;
      CAPTURE(path);
      CAPTURE(block);
      CHECK(read_file(kSource / path).find(block) != std::string::npos);
      continue;
    }
    if (inside) block += line + "\n";
  }
  CHECK_FALSE(inside);
  CHECK(excerpts >= 3);
}

TEST_CASE("the README's layout table names every source folder, and only folders that exist") {
  const std::string readme = read_file(kSource / "README.md");
  const auto start = readme.find("## Layout");
  REQUIRE(start != std::string::npos);
  const auto end = readme.find("\n## ", start + 1);
  std::set<std::string> listed;
  std::istringstream rows(readme.substr(start, end - start));
  for (std::string line; std::getline(rows, line);) {
    // "| `http/` | ..." or "| `db/sqlite/` | ...": the first cell names a folder.
    if (line.rfind("| `", 0) != 0) continue;
    const auto close = line.find('`', 3);
    const std::string name = line.substr(3, close - 3);
    if (!name.empty() && name.back() == '/') listed.insert(name.substr(0, name.size() - 1));
  }
  // Every folder of the source tree holding C++ (one or two levels down), so
  // that a new role folder cannot land without its row.
  std::set<std::string> present;
  for (const auto& entry : fs::directory_iterator(kSource)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name[0] == '.' || name.rfind("build", 0) == 0 ||
        name == "node_modules" || name == "data") {
      continue;
    }
    present.insert(name);
    for (const auto& sub : fs::directory_iterator(entry.path())) {
      if (!sub.is_directory() || name == "tests" || name == "docs" || name == "bench") continue;
      for (const auto& file : fs::directory_iterator(sub.path())) {
        const auto ext = file.path().extension();
        if (ext == ".cpp" || ext == ".h") {
          present.insert(name + "/" + sub.path().filename().string());
          break;
        }
      }
    }
  }
  for (const auto& folder : present) {
    CAPTURE(folder);
    CHECK(listed.count(folder) == 1);
  }
  for (const auto& folder : listed) {
    CAPTURE(folder);
    CHECK(fs::is_directory(kSource / folder));
  }
}

TEST_CASE("every relative link in README.md and docs/*.md names a file of the repository") {
  const std::regex link(R"(\]\(([^)#]+)(#[^)]*)?\))");
  for (const fs::path& doc : {kSource / "README.md", kSource / "docs/API.md",
                              kSource / "docs/RELIABILITY.md", kSource / "docs/PERFORMANCE.md"}) {
    // Markdown outside fenced blocks: `[&](db::Conn& conn)` in a C++
    // example is code, not a link.
    std::string text;
    bool fenced = false;
    std::istringstream lines(read_file(doc));
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("```", 0) == 0) {
        fenced = !fenced;
      } else if (!fenced) {
        text += line + "\n";
      }
    }
    for (std::sregex_iterator it(text.begin(), text.end(), link), end; it != end; ++it) {
      const std::string target = (*it)[1].str();
      if (target.find("://") != std::string::npos) continue;
      CAPTURE(doc.string());
      CAPTURE(target);
      CHECK(fs::exists(doc.parent_path() / target));
    }
  }
}

TEST_CASE("the README's curl walk-throughs run as written and answer what their comments say") {
  const std::string readme = read_file(kSource / "README.md");
  std::vector<Step> steps;
  for (const auto& block : fenced_blocks(readme, "sh")) {
    if (block.find("curl ") == std::string::npos) continue;
    for (auto& step : steps_of(block)) steps.push_back(std::move(step));
  }
  REQUIRE(steps.size() >= 25);

  testing::TempDir dir;
  // As `make run` serves, on a free port instead of 8080.
  testing::ServerProcess server(dir.file("walk.db"), {"--fake-gateway"});
  const std::string gateway_line = server.read_stdout_line();
  REQUIRE(gateway_line.rfind("fake gateway on http://", 0) == 0);
  const std::string gateway = gateway_line.substr(std::string("fake gateway on ").size());
  const std::string port = std::to_string(server.port());
  for (auto& step : steps) {
    replace_all(step.command, "127.0.0.1:8080", "127.0.0.1:" + port);
    replace_all(step.command, "localhost:8080", "127.0.0.1:" + port);
    replace_all(step.command, "http://127.0.0.1:PORT", gateway);
  }
  std::string prelude;  // assignments run so far ($BODY, $GW), replayed before each command
  int checked = 0;
  for (const Step& step : steps) {
    if (step.command.rfind("curl", 0) != 0) {
      prelude += step.command;
      continue;
    }
    CAPTURE(step.command);
    std::string output = run_shell(dir, prelude, step.command);
    auto broken = broken_promises(output, step);
    // A read of what the runner does after the commit (the welcome email,
    // the order shipping) is asked again, as a reader of the README would,
    // until it holds or 10 s pass. Writes are never repeated.
    const bool read = step.command.find(" -X ") == std::string::npos &&
                      step.command.find(" -d ") == std::string::npos;
    if (!broken.empty() && read) {
      testing::eventually(
          [&] {
            output = run_shell(dir, prelude, step.command);
            broken = broken_promises(output, step);
            return broken.empty();
          },
          std::chrono::seconds(10));
    }
    CAPTURE(output);
    for (const auto& b : broken) {
      CAPTURE(b);
      CHECK_MESSAGE(false, "the output lacks what the README's comment promises");
    }
    CHECK(!output.empty());  // every curl got an answer
    ++checked;
  }
  CHECK(checked >= 25);
}

TEST_CASE("the README's command-line and backup examples run as written and print what they say") {
  const std::string readme = read_file(kSource / "README.md");
  testing::TempDir dir;
  // `aftercommit` on the PATH; the system paths of the examples in the
  // test's own directory; the working directory a fresh one.
  const fs::path bin = dir.path() / "bin";
  const fs::path work = dir.path() / "work";
  const fs::path state = dir.path() / "var-lib-aftercommit";
  const fs::path backups = dir.path() / "backup";
  for (const auto& d : {bin, work, state, backups}) fs::create_directories(d);
  fs::create_symlink(AFTERCOMMIT_BINARY, bin / "aftercommit");
  REQUIRE(testing::run_binary({"migrate", "--db", (state / "aftercommit.db").string()}).first == 0);
  const std::string prelude = "cd " + testing::shell_quote(work.string()) +
                              "\nexport PATH=" + testing::shell_quote(bin.string()) +
                              ":\"$PATH\"\n";

  std::vector<Step> steps;
  for (const auto& block : fenced_blocks(readme, "sh")) {
    if (block.find("curl ") != std::string::npos || block.find("make ") == 0) continue;
    for (auto& step : steps_of(block)) steps.push_back(std::move(step));
  }
  REQUIRE(steps.size() >= 10);
  std::string exports;
  int ran = 0;
  for (auto& step : steps) {
    replace_all(step.command, "/var/lib/aftercommit/", state.string() + "/");
    replace_all(step.command, "/backup/", backups.string() + "/");
    CAPTURE(step.command);
    if (step.command.rfind("export ", 0) == 0) {
      exports += step.command;
      continue;
    }
    int code = -1;
    const std::string output = run_shell(dir, prelude + exports, step.command, &code);
    CAPTURE(output);
    // Every example succeeds, except where its comment says otherwise.
    bool says_exit_1 = false;
    for (const auto& comment : step.expected)
      says_exit_1 |= comment.find("exit 1") != std::string::npos;
    CHECK(code == (says_exit_1 ? 1 : 0));
    for (const auto& b : broken_promises(output, step)) {
      CAPTURE(b);
      CHECK_MESSAGE(false, "the output lacks what the README's comment promises");
    }
    ++ran;
  }
  CHECK(ran >= 9);
}

namespace {

// One command of a console transcript (`$ ` lines): the lines printed under
// it, its exit code (0, or 1 where a `# exit 1` comment follows it), and the
// narration (`#` lines) that came before it.
struct TranscriptStep {
  std::string command;
  std::vector<std::string> output;
  int exit_code = 0;
  std::string narration;
};

std::vector<TranscriptStep> transcript_of(const std::string& block) {
  std::vector<TranscriptStep> steps;
  std::string narration;
  std::istringstream in(block);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      if (line.find("exit 1") != std::string::npos && !steps.empty()) steps.back().exit_code = 1;
      narration += line + "\n";
    } else if (line.rfind("$ ", 0) == 0) {
      steps.push_back(TranscriptStep{line.substr(2), {}, 0, narration});
      narration.clear();
    } else if (!line.empty() && !steps.empty()) {
      steps.back().output.push_back(line);
    }
  }
  return steps;
}

// What may differ from run to run in a transcript line: sizes and
// durations, the reason SQLite gives for a damaged file (it depends on the
// random bytes), and the column padding.
std::string normalized(std::string line) {
  line = std::regex_replace(line, std::regex(R"(\d+(\.\d+)? (MiB|s|steps|bytes)\b)"), "# $2");
  constexpr std::string_view kReason = "nothing restored: ";
  if (const auto at = line.find(kReason); at != std::string::npos) {
    line = line.substr(0, at + kReason.size()) + "...";
  }
  line = std::regex_replace(line, std::regex("[ \t]+"), " ");
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// The README's fenced `console` block that contains `needle`.
std::string console_block(const std::string& needle) {
  for (const auto& block : fenced_blocks(read_file(kSource / "README.md"), "console")) {
    if (block.find(needle) != std::string::npos) return block;
  }
  return {};
}

}  // namespace

TEST_CASE("the README's restore drill runs as written and prints what its transcript shows") {
  const auto steps = transcript_of(console_block("aftercommit restore --from"));
  REQUIRE(steps.size() >= 5);
  testing::TempDir dir;
  const fs::path bin = dir.path() / "bin";
  const fs::path work = dir.path() / "work";
  for (const auto& d : {bin, work / "data", work / "backups"}) fs::create_directories(d);
  fs::create_symlink(AFTERCOMMIT_BINARY, bin / "aftercommit");
  const std::string prelude = "cd " + testing::shell_quote(work.string()) +
                              "\nexport PATH=" + testing::shell_quote(bin.string()) +
                              ":\"$PATH\"\n";

  // The narration says what happens between the commands; the test does it.
  REQUIRE(steps.front().narration.find("A server runs on data/aftercommit.db with --backup-dir "
                                       "backups") != std::string::npos);
  std::optional<testing::ServerProcess> server;
  server.emplace((work / "data/aftercommit.db").string(),
                 std::vector<std::string>{"--backup-dir", (work / "backups").string()});
  auto http = server->client();
  for (const char* email : {"a%40example.com", "b%40example.com", "c%40example.com"}) {
    REQUIRE(testing::request(http, "PUT", std::string("/users/") + email).status == 201);
  }
  testing::eventually([&] {  // the welcome emails sent, as the stats line shows
    return testing::request(http, "GET", "/jobs?state=completed").json()["jobs"].size() == 3;
  });

  int ran = 0;
  for (const TranscriptStep& step : steps) {
    CAPTURE(step.command);
    if (step.narration.find("then the server stops") != std::string::npos) {
      REQUIRE(testing::request(http, "PUT", "/users/after%40example.com").status == 201);
      CHECK(server->terminate_and_wait() == 0);
      server.reset();
    }
    int code = -1;
    const std::string output = run_shell(dir, prelude, step.command + "\n", &code);
    CAPTURE(output);
    CHECK(code == step.exit_code);
    std::vector<std::string> printed;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) printed.push_back(normalized(line));
    std::size_t at = 0;  // the transcript's lines appear in this order
    for (const std::string& expected : step.output) {
      CAPTURE(expected);
      const auto found = std::find(printed.begin() + static_cast<std::ptrdiff_t>(at), printed.end(),
                                   normalized(expected));
      CHECK_MESSAGE(found != printed.end(),
                    "the transcript shows a line the command did not print");
      if (found != printed.end()) at = static_cast<std::size_t>(found - printed.begin()) + 1;
    }
    ++ran;
  }
  CHECK(ran == static_cast<int>(steps.size()));
  CHECK_FALSE(server.has_value());  // the narration's stop happened
}

TEST_CASE("the README's install and upgrade steps run as written into a staging root") {
  // Each line runs as written, with three adaptations a machine without a
  // running systemd needs, and every absolute path moved under `root`:
  // - the `cmake` build line is what `make build` runs; the suite's own
  //   binary stands in for build/aftercommit;
  // - systemd-sysusers and systemctl work offline on `--root`; `daemon-reload`,
  //   `--now` and `restart` need a running manager, so `enable` runs offline
  //   and `restart` is checked against the unit (migrate, then serve).
  testing::TempDir dir;
  const fs::path root = dir.path() / "root";
  const fs::path src = dir.path() / "src";
  for (const char* d : {"usr/local/bin", "usr/lib/sysusers.d", "etc/systemd/system",
                        "var/lib/aftercommit/backups"}) {
    fs::create_directories(root / d);
  }
  fs::create_directories(src / "build");
  fs::create_symlink(AFTERCOMMIT_BINARY, src / "build/aftercommit");
  fs::create_directory_symlink(kSource / "deploy", src / "deploy");
  // The installed binary is the one on the PATH, as /usr/local/bin is.
  const std::string prelude =
      "set -e\ncd " + testing::shell_quote(src.string()) +
      "\nexport PATH=" + testing::shell_quote((root / "usr/local/bin").string()) + ":\"$PATH\"\n";
  const std::string r = testing::shell_quote(root.string());

  auto run_block = [&](const std::string& block) {
    int ran = 0;
    std::istringstream in(block);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line.rfind("#", 0) == 0 || line.rfind("cmake ", 0) == 0) continue;
      CAPTURE(line);
      if (line.rfind("systemctl restart aftercommit", 0) == 0) {
        const std::string unit = read_file(kSource / "deploy/aftercommit.service");
        CHECK(std::regex_search(unit, std::regex(R"(\nExecStartPre=\S*aftercommit migrate)")));
        CHECK(std::regex_search(unit, std::regex(R"(\nExecStart=\S*aftercommit serve)")));
        continue;
      }
      replace_all(line, "systemctl daemon-reload && systemctl enable --now aftercommit",
                  "systemctl --root=" + r + " enable aftercommit");
      if (line.rfind("systemd-sysusers", 0) == 0) {
        line.replace(0, std::string("systemd-sysusers").size(), "systemd-sysusers --root=" + r);
      }
      for (const char* prefix : {" /usr/", " /etc/", " /var/lib/"}) {
        replace_all(line, prefix, " " + root.string() + std::string(prefix).substr(1));
      }
      int code = -1;
      const std::string output = run_shell(dir, prelude, line + "\n", &code);
      CAPTURE(output);
      CHECK(code == 0);
      ++ran;
    }
    return ran;
  };

  const std::string install = console_block("systemd-sysusers");
  REQUIRE_FALSE(install.empty());
  CHECK(run_block(install) >= 5);
  const fs::path installed = root / "usr/local/bin/aftercommit";
  CHECK((fs::status(installed).permissions() & fs::perms::all) == static_cast<fs::perms>(0755));
  int version_code = -1;
  run_shell(dir, "", testing::shell_quote(installed.string()) + " --version\n", &version_code);
  CHECK(version_code == 0);
  CHECK(read_file(root / "etc/passwd").find("aftercommit:") != std::string::npos);
  CHECK((fs::status(root / "etc/aftercommit").permissions() & fs::perms::all) ==
        static_cast<fs::perms>(0750));
  CHECK(fs::is_symlink(root / "etc/systemd/system/multi-user.target.wants/aftercommit.service"));

  // The upgrade, on a database the installed service would have made.
  const std::string db = (root / "var/lib/aftercommit/aftercommit.db").string();
  REQUIRE(testing::run_binary({"migrate", "--db", db}).first == 0);
  const std::string upgrade = console_block("pre-upgrade.db");
  REQUIRE_FALSE(upgrade.empty());
  CHECK(run_block(upgrade) >= 2);
  CHECK(fs::exists(root / "var/lib/aftercommit/backups/pre-upgrade.db"));
}
