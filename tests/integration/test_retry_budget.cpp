// A RetryBudget shared by 8 threads that retry a loopback server which is down: their attempts
// stay within the budget's bound (not each thread's whole schedule), and once the server is back
// every thread connects. Run under TSan by the tsan workflow.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>
#include "events.hpp"
#include "fd_count.hpp"
import connpolicy;
import connpolicy.testing;
#include "loopback.hpp"

namespace cp = connpolicy;
using namespace std::chrono_literals;

namespace {
using CountAttempts = test_support::CountEvents<std::atomic<int>>;
using Client = cp::Connector<cp::EphemeralBind, cp::Budgeted<cp::ExponentialRetry>, cp::DefaultErrorPolicy,
                             cp::NativeSystem, CountAttempts>;
}  // namespace

TEST_CASE("retry budget: 8 threads retrying a server that is down stay within the budget, then all connect",
          "[integration][budget][threads]") {
  constexpr int threads = 8, max_attempts = 30;
  const auto fds = test_support::open_fd_count();
  const std::uint16_t port = test_support::free_port_block(1);  // nothing listens there yet
  const cp::Endpoint server = cp::Endpoint::loopback_v4(port);
  cp::RetryBudget budget({.max_tokens = 20, .token_ratio = 0.5});  // retries while more than 10 left
  std::atomic<int> attempts{0}, budget_refusals{0}, refused{0}, connected{0};
  Client client{
      {.retry =
           cp::Budgeted{
               cp::ExponentialRetry{
                   {.initial = 2ms, .max_delay = 20ms, .max_attempts = max_attempts, .deadline = 10s, .seed = 7}},
               budget},
       .observer = CountAttempts{&attempts}}};
  auto on_every_thread = [&](auto body) {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t) workers.emplace_back(body);
  };
  on_every_thread([&] {  // (no Catch assertion in a thread: Catch2 is not thread-safe)
    auto s = client.connect(server);
    if (!s && s.error().condition() == cp::Errc::connection_refused) ++refused;
    if (!s && s.error().gave_up() == cp::GiveUp::retry_budget) ++budget_refusals;
  });
  // Each thread's first attempt, then the 9 retries that leave more than 10 of 20 tokens; without
  // the budget they would make 8 x 30.
  INFO("attempts while down " << attempts << ", tokens left " << budget.tokens());
  CHECK(refused == threads);
  CHECK(attempts == threads + 9);
  CHECK(budget_refusals == threads);
  CHECK(budget.tokens() == 20.0 - (threads + 9));
  {
    cp::LoopbackServer up(cp::LoopbackServer::Mode::client_closes_first, port);
    on_every_thread([&] {
      if (auto s = client.connect(up.endpoint())) ++connected;
    });
  }
  CHECK(connected == threads);
  CHECK(budget.tokens() == 20.0 - (threads + 9) + threads * 0.5);
  CHECK(test_support::open_fd_count() == fds);
}
