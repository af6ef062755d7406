// RetryBudget's arithmetic (gRPC's token bucket, exact), Budgeted<R> over a fake system, and the
// bucket shared by 8 threads (no update lost: run under TSan by the tsan workflow).
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <thread>
#include <vector>
#include "events.hpp"
import connpolicy;
import connpolicy.testing;

namespace cp = connpolicy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using test_support::Recorder;

namespace {
const cp::Endpoint server = cp::Endpoint::loopback_v4(7000);
const cp::NetError refused = cp::NetError(cp::Step::connect, cp::make_system_error(ECONNREFUSED));
using Budgeted = cp::Budgeted<cp::FixedDelayRetry>;
using Client = cp::Connector<cp::NoBind, Budgeted, cp::DefaultErrorPolicy, cp::FakeSystem, Recorder>;
}  // namespace

TEST_CASE("retry budget: starts full, a failure costs 1, retries only above half", "[retry][budget]") {
  cp::RetryBudget budget;  // gRPC's usual 10 tokens, 0.1 back per success
  CHECK(budget.tokens() == 10.0);
  CHECK(budget.allows_retry());
  std::vector<bool> allowed;
  for (int i = 0; i < 6; ++i) allowed.push_back(budget.record_failure());
  CHECK(allowed == std::vector<bool>{true, true, true, true, false, false});  // 9 8 7 6 | 5 4
  CHECK(budget.tokens() == 4.0);
  CHECK(budget.refused() == 2);
  CHECK_FALSE(budget.allows_retry());
  for (int i = 0; i < 21; ++i) budget.record_success();  // 4 + 2.1
  CHECK(budget.tokens() == Approx(6.1).margin(1e-9));
  CHECK(budget.allows_retry());          // 6.1 - 1 = 5.1 > 5
  CHECK(budget.record_failure());        // 5.1
  CHECK_FALSE(budget.record_failure());  // 4.1: not above 5
}

TEST_CASE("retry budget: never below 0 or above max_tokens, thousandths kept exactly", "[retry][budget]") {
  cp::RetryBudget budget({.max_tokens = 3, .token_ratio = 1.001});
  for (int i = 0; i < 10; ++i) budget.record_failure();
  CHECK(budget.tokens() == 0.0);
  budget.record_success();
  CHECK(budget.tokens() == 1.001);  // 1.001 * 1000 is 1000.99...: counted as 1001 thousandths
  for (int i = 0; i < 100; ++i) budget.record_success();
  CHECK(budget.tokens() == 3.0);
  CHECK(budget.record_failure());        // 2 > 1.5
  CHECK_FALSE(budget.record_failure());  // 1
}

TEST_CASE("retry budget: copies share one bucket", "[retry][budget]") {
  cp::RetryBudget a;
  cp::RetryBudget b = a;
  b.record_failure();
  CHECK(a.tokens() == 9.0);
}

TEST_CASE("retry budget: options that mean nothing are refused, naming the option", "[retry][budget][configure]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (auto [options, name] : {std::pair{cp::RetryBudgetOptions{.max_tokens = 0}, "max_tokens"},
                               std::pair{cp::RetryBudgetOptions{.max_tokens = 2'000'000}, "max_tokens"},
                               std::pair{cp::RetryBudgetOptions{.token_ratio = 0}, "token_ratio"},
                               std::pair{cp::RetryBudgetOptions{.token_ratio = 0.0004}, "token_ratio"},
                               std::pair{cp::RetryBudgetOptions{.token_ratio = nan}, "token_ratio"},
                               std::pair{cp::RetryBudgetOptions{.max_tokens = 2, .token_ratio = 3}, "token_ratio"}}) {
    auto made = cp::RetryBudget::make(options);
    REQUIRE_FALSE(made);
    CHECK(made.error() == cp::Errc::invalid_argument);
    CHECK_THAT(made.error().message(), Contains(std::string("RetryBudgetOptions::") + name));
  }
  CHECK(cp::RetryBudget::make({.max_tokens = 1, .token_ratio = 0.001}));
  // A Connector holding a bad budget connects nowhere.
  cp::FakeSystem sys;
  std::vector<cp::AttemptEvent> events;
  Client c{{.retry = Budgeted{cp::FixedDelayRetry{}, cp::RetryBudget({.max_tokens = 0})},
            .system = sys,
            .observer = Recorder{&events}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().step() == cp::Step::configure);
  CHECK(sys.calls().empty());
}

TEST_CASE("budgeted: a refused retry ends the connect with its own reason, and the observer sees it",
          "[retry][budget][connector]") {
  cp::FakeSystem sys;
  cp::ManualTimer timer;
  sys.fail(cp::Call::connect, std::errc::connection_refused, 6);  // then the server is up
  cp::RetryBudget budget;
  std::vector<cp::AttemptEvent> events;
  Client c{{.retry = Budgeted{cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 20}}, budget},
            .system = sys,
            .options = {.timer = &timer},
            .observer = Recorder{&events}}};
  auto s = c.connect(server);
  REQUIRE_FALSE(s);
  CHECK(s.error().attempts() == 5);                              // tokens 9 8 7 6 allow retries, 5 does not
  CHECK(s.error().condition() == cp::Errc::connection_refused);  // what the last round met
  CHECK(s.error().gave_up() == cp::GiveUp::retry_budget);
  CHECK_THAT(s.error().message(), Contains("gave up: the shared retry budget refused"));
  REQUIRE(events.size() == 5);
  CHECK(events[3].action == cp::Action::retry);
  CHECK_FALSE(events[3].gave_up);
  CHECK(events[4].action == cp::Action::give_up);
  CHECK(events[4].gave_up == cp::GiveUp::retry_budget);
  CHECK(timer.sleeps().size() == 4);
  // The next connect gets its first attempt, no retry; a success gives 0.1 back.
  events.clear();
  CHECK(c.connect(server).error().attempts() == 1);
  CHECK(budget.tokens() == 4.0);  // 10 - 5 - 1
  REQUIRE(c.connect(server));
  CHECK(budget.tokens() == Approx(4.1).margin(1e-9));
  CHECK(sys.open_handles() == 0);
}

TEST_CASE("budgeted: the wrapped policy's own reason wins, and its last failure still costs a token",
          "[retry][budget]") {
  cp::ManualTimer timer;
  cp::RetryBudget budget;
  Budgeted policy{cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 2}}, budget};
  auto s = policy.schedule(timer);
  CHECK(s.next_delay(refused) == cp::Timer::duration(10ms));
  CHECK(s.next_delay(refused).error() == cp::GiveUp::max_attempts);
  CHECK(budget.tokens() == 8.0);
}

TEST_CASE("budgeted: failures that never reached the server cost nothing", "[retry][budget]") {
  cp::ManualTimer timer;
  cp::RetryBudget budget({.max_tokens = 2});
  Budgeted policy{cp::FixedDelayRetry{{.delay = 10ms, .max_attempts = 0, .deadline = 1h}}, budget};
  auto s = policy.schedule(timer);
  const cp::NetError busy(cp::Step::bind, cp::make_system_error(EADDRINUSE));
  const cp::NetError cooling(cp::Step::bind, cp::LibraryError::all_ports_cooling);
  const cp::NetError no_fd(cp::Step::socket, cp::make_system_error(EMFILE));
  const cp::NetError pair_taken(cp::Step::connect, cp::make_system_error(EADDRNOTAVAIL));
  for (const auto* e : {&busy, &cooling, &no_fd, &pair_taken}) CHECK(s.next_delay(*e));
  CHECK(budget.tokens() == 2.0);
  CHECK_FALSE(s.next_delay(refused));  // 1: not above 1
  CHECK(budget.tokens() == 1.0);
}

TEST_CASE("retry budget: 8 threads share one bucket and lose no update", "[retry][budget][threads]") {
  constexpr int threads = 8, per_thread = 5000;
  cp::RetryBudget budget({.max_tokens = 100'000, .token_ratio = 0.5});
  std::atomic<int> allowed{0};
  auto on_all = [&](auto body) {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&] {
        for (int i = 0; i < per_thread; ++i) body();
      });
  };
  on_all([&] { allowed += budget.record_failure() ? 1 : 0; });
  CHECK(budget.tokens() == 60'000.0);      // 100 000 - 40 000: every failure counted once
  CHECK(allowed == threads * per_thread);  // all above 50 000
  on_all([&] { budget.record_success(); });
  CHECK(budget.tokens() == 80'000.0);  // + 40 000 * 0.5
  // Down past half from many threads at once: exactly the failures that left more than half allow.
  cp::RetryBudget small({.max_tokens = 1000});
  allowed = 0;
  on_all([&] { allowed += small.record_failure() ? 1 : 0; });
  CHECK(allowed == 499);  // 999 .. 501
  CHECK(small.tokens() == 0.0);
  CHECK(small.refused() == threads * per_thread - 499);
}
