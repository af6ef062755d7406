// FakeResolver: a name's answers, scripted per family, for tests. Each lookup takes its scripted
// delay on a ManualTimer (no real time passes), so a test can check what a connect does when the
// AAAA answer is 30 ms late, or never comes within the limit.
//
//     connpolicy::ManualTimer timer;
//     connpolicy::FakeResolver names(&timer);
//     names.answer("login.example.com", Family::ipv6, {.addresses = {v6}, .delay = 30ms})
//          .answer("login.example.com", Family::ipv4, {.addresses = {v4}});
//     client.connect(*HostPort::parse("login.example.com:7000"), names);
//
// resolve_both() asks AAAA and A at once: their delays overlap (the later answer comes at the
// longer delay, not the sum), and the connect's waits move the ManualTimer to each answer.
//
// Answers for one name and family are given in the order scripted, the last one again and again
// (script try_again, then an address, to test a retry). A name and family with no script has no
// address. Copies share the script and the record.
module;
#include <chrono>
#include <memory>
#include <optional>
#include <mutex>
#include <stop_token>
#include <string>
#include <system_error>
#include <vector>
export module connpolicy.testing:fake_resolver;
import connpolicy.core;
import :manual_timer;

export namespace connpolicy {

struct FakeAnswer {
  std::vector<Endpoint> addresses;    // their ports are replaced by the name's
  std::error_code error;              // when set: the lookup fails with it (Step::resolve)
  std::chrono::milliseconds delay{};  // how long the lookup takes, on the timer
};

// FakeResolver's two lookups in flight: each answer is due at its delay after resolve_both().
class FakeLookups {
 public:
  struct Due {
    Timer::time_point at;
    FamilyAnswer answer;
    bool given = false;
  };
  FakeLookups(ManualTimer* timer, std::vector<Due> due, std::stop_token stop);
  // The earliest answer due by `until` (the timer moves to it), or nullopt (the timer moves to
  // `until`, when that is not max()).
  std::optional<FamilyAnswer> next(Timer::time_point until);

 private:
  ManualTimer* timer_;
  std::vector<Due> due_;
  std::stop_token stop_;
};

class FakeResolver {
 public:
  explicit FakeResolver(ManualTimer* timer = nullptr);

  FakeResolver& answer(std::string host, Family family, FakeAnswer answer);
  // Within `limit`, or timed out after it; cancelled when `stop` is requested before the answer.
  expected<std::vector<Endpoint>, NetError> resolve(const HostPort& name, Family family,
                                                    std::chrono::milliseconds limit, std::stop_token stop);
  // AAAA and A at once (asked() records both, AAAA first).
  FakeLookups resolve_both(const HostPort& name, std::chrono::milliseconds limit, std::stop_token stop);
  // Every lookup so far, in order: "login.example.com AAAA", "login.example.com A".
  std::vector<std::string> asked() const;

 private:
  struct Script;
  std::shared_ptr<Script> script_;
  // The scripted answer for the next lookup of `name`'s `family` (recorded in asked()).
  FakeAnswer take(const HostPort& name, Family family);
};

}  // namespace connpolicy
