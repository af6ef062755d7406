// The Asio driver honours a RetryBudget as the blocking one does (the decision core asks it):
// 100 coroutines on one thread retry a loopback server that is down, sharing one budget.
#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
import connpolicy;
import connpolicy.asio;
import connpolicy.testing;
#include "events.hpp"
#include "fd_count.hpp"
#include "loopback.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {
using CountAttempts = test_support::CountEvents<int>;
using Client = cp::Connector<cp::NoBind, cp::Budgeted<cp::ExponentialRetry>, cp::DefaultErrorPolicy, cp::NativeSystem,
                             CountAttempts>;
}  // namespace

TEST_CASE("asio: 100 coroutines share a retry budget: attempts stay within it, then all connect", "[asio][budget]") {
  constexpr int coroutines = 100;
  const auto fds = test_support::open_fd_count();
  const auto port = test_support::free_port_block(1);
  cp::RetryBudget budget({.max_tokens = 20});
  int attempts = 0, budget_refusals = 0, connected = 0;
  Client client{
      {.retry = cp::Budgeted{cp::ExponentialRetry{{.initial = 5ms, .max_delay = 50ms, .max_attempts = 30, .seed = 3}},
                             budget},
       .observer = CountAttempts{&attempts}}};
  auto run_all = [&](auto on_result) {
    asio::io_context io;
    for (int i = 0; i < coroutines; ++i)
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            on_result(co_await cp::asio::async_connect(io.get_executor(), client, cp::Endpoint::loopback_v4(port),
                                                       asio::use_awaitable));
          },
          asio::detached);
    io.run_for(30s);  // returns when every coroutine has ended
  };
  run_all([&](auto r) {
    if (!r && r.error().gave_up() == cp::GiveUp::retry_budget) ++budget_refusals;
  });
  // 100 first attempts, and the 9 retries that leave more than 10 of 20 tokens (not 100 x 30).
  CHECK(attempts == coroutines + 9);
  CHECK(budget_refusals == coroutines);
  CHECK(budget.tokens() == 0.0);
  {
    cp::LoopbackServer up(cp::LoopbackServer::Mode::client_closes_first, port);
    run_all([&](auto r) {
      if (r) ++connected;
    });
  }
  CHECK(connected == coroutines);
  CHECK(budget.tokens() == Approx(10.0));  // 100 successes x 0.1
  CHECK(test_support::open_fd_count() == fds);
}
