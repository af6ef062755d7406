// custom_policy: your own bind policy and your own error policy, checked by the concepts.
//
// PortsFromList binds ports from a list you give (say, the ports a firewall lets out), in turn.
// RetryRefusedOnly waits and retries only when the server refused (it may be restarting) and
// gives up on anything else at once.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>
import connpolicy;
import connpolicy.testing; // LoopbackServer, the demo's peer

namespace cp = connpolicy;

// A bind policy: can_rebind, plan(remote), failed(plan, error). Copies share the turn counter, so
// one policy handed to several connectors still goes round the list once.
class PortsFromList {
 public:
  static constexpr bool can_rebind = true;  // another port from the list may work

  explicit PortsFromList(std::vector<std::uint16_t> ports)
      : ports_(std::make_shared<const std::vector<std::uint16_t>>(std::move(ports))),
        next_(std::make_shared<std::atomic<std::size_t>>(0)) {}

  cp::expected<cp::BindPlan, cp::NetError> plan(const cp::Endpoint& remote) const {
    if (ports_->empty())
      return cp::unexpected(
          cp::NetError(cp::Step::bind, cp::LibraryError::invalid_port_range, "the port list is empty"));
    cp::BindPlan plan;
    plan.local = cp::any_address_for(remote, (*ports_)[next_->fetch_add(1) % ports_->size()]);
    return plan;
  }
  void failed(const cp::BindPlan&, const cp::NetError&) const noexcept {}  // the turn has moved on already

 private:
  std::shared_ptr<const std::vector<std::uint16_t>> ports_;
  std::shared_ptr<std::atomic<std::size_t>> next_;
};

// An error policy: classify(failure) -> Action.
struct RetryRefusedOnly {
  cp::Action classify(const cp::Failure& f) const noexcept {
    if (f.error.condition() == cp::Errc::local_port_busy && f.can_rebind) return cp::Action::rebind;
    if (f.error.condition() == cp::Errc::connection_refused) return cp::Action::retry;
    return cp::Action::give_up;
  }
};

static_assert(cp::BindPolicy<PortsFromList>);
static_assert(cp::ErrorPolicy<RetryRefusedOnly>);

int main() {
  cp::LoopbackServer server;
  const auto block = cp::find_free_port_range(3).value();
  PortsFromList ports({block.first(), static_cast<std::uint16_t>(block.first() + 2)});  // 2 of the 3
  cp::Connector<PortsFromList, cp::FixedDelayRetry, RetryRefusedOnly> client{
      ports, cp::FixedDelayRetry{{.delay = std::chrono::milliseconds(10), .max_attempts = 3}}};

  std::printf("custom_policy: binding from ports {%u, %u}\n", block.first(), block.first() + 2);
  std::vector<cp::Socket> open;
  for (int i = 0; i < 2; ++i) {
    auto s = client.connect(server.endpoint());
    if (!s) {
      std::printf("connect failed: %s\n", s.error().message().c_str());
      return 1;
    }
    std::printf("  connection %d from %s\n", i + 1, s->local_endpoint().value().to_string().c_str());
    open.push_back(std::move(*s));
  }
  // Both ports are held by open sockets now. A third connect finds each busy; RetryRefusedOnly
  // asks to rebind, and PortsFromList (which cannot tell a busy port from a free one) always
  // offers another, so it is the Connector's bound, ConnectorOptions::max_rebinds (64), that
  // ends the round: 65 attempts, then the error.
  auto third = client.connect(server.endpoint());
  std::printf("  a third while both are open: %s\n",
              third ? "connected (unexpected)" : third.error().message().c_str());
  return third ? 1 : 0;
}
