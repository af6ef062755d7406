// FakeCensus: the kernel's census as a test wants it. Holds sockets the test declares (a
// TIME_WAIT with so much time left, a port some other program holds) on a Timer, so a
// ManualTimer's advance makes TIME_WAITs run down and vanish as the kernel's would.
//
//     connpolicy::ManualTimer timer;
//     connpolicy::FakeCensus census(timer);
//     census.add_time_wait(connpolicy::Endpoint::loopback_v4(40003), server, 30s);
//     connpolicy::FixedPortRotation rotation{40000, 40009, {.timer = &timer, .census = &census}};
//
// Use when: a unit test checks what a FixedPortRotation (or your own policy) does with what
// the kernel says, without sockets and without waiting.
module;
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <vector>
export module connpolicy.testing:fake_census;
import connpolicy.core;
import connpolicy.diag;

export namespace connpolicy {

class FakeCensus final : public PortCensus {
 public:
  explicit FakeCensus(Timer& timer) noexcept : timer_(&timer) {}
  FakeCensus(const FakeCensus&) = delete;
  FakeCensus& operator=(const FakeCensus&) = delete;

  // A socket in TIME_WAIT that the kernel frees `left` from now.
  void add_time_wait(const Endpoint& local, const Endpoint& remote, std::chrono::milliseconds left);
  // A socket in another state (held until remove()).
  void add(const Endpoint& local, const Endpoint& remote, TcpState state);
  void remove(std::uint16_t local_port);
  void clear();
  // Every survey fails with `code` until called again with an empty code.
  void fail_with(std::error_code code);
  void set_tcp_timestamps(std::optional<bool> on);
  // How late "the kernel's" TIME_WAIT timer may fire (the real one: time_wait_timer_slack()).
  void set_time_wait_slack(std::chrono::milliseconds slack);

  // false: TIME_WAITs are reported without their time left, as Windows' GetExtendedTcpTable
  // reports them (they still vanish when their time is up). Default true, as on Linux.
  void report_time_left(bool report);

  // Runs `hook` in each survey and look_up after the answer is taken and before it is returned,
  // on the asking thread, outside the fake's lock. Use when: a test makes something happen while
  // a census is in flight (a socket closing, another thread's plan() or snapshot()).
  void while_surveying(std::function<void()> hook);

  expected<Census, NetError> survey(PortRange range) override;
  // What the kernel's look_up does: the declared sockets with exactly these ends.
  expected<Census, NetError> look_up(std::span<const SocketPair> pairs) override;
  std::size_t surveys() const;
  std::size_t look_ups() const;

 private:
  struct Entry {
    PortUse use;
    std::optional<Timer::time_point> frees_at;  // TIME_WAIT
  };
  Timer* timer_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  std::error_code failure_;
  std::optional<bool> timestamps_ = true;
  std::chrono::milliseconds slack_{0};
  bool report_time_left_ = true;
  std::size_t surveys_ = 0;
  std::size_t look_ups_ = 0;
  // The census as the kernel would answer now, for the uses `wanted` keeps; counts nothing.
  template <class Wanted>
  expected<Census, NetError> answer(Wanted wanted);
  std::function<void()> while_surveying_;
};

}  // namespace connpolicy
