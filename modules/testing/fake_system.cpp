module;
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>
module connpolicy.testing;
import connpolicy.core;
import :fake_system_state;

namespace connpolicy {

namespace {
std::error_code bad_handle() { return make_system_error(EBADF); }
}  // namespace

std::string_view to_string(Call call) noexcept {
  static constexpr std::array<std::string_view, call_kinds> names{
      "open_socket",   "set_option",     "set_nonblocking", "bind",  "connect",          "wait_writable",
      "pending_error", "local_endpoint", "remote_endpoint", "close", "wait_any_writable"};
  return names[static_cast<std::size_t>(call)];
}

FakeSystem::FakeSystem() : state_(std::make_shared<State>()) {}

FakeSystem& FakeSystem::script(Call call, std::initializer_list<std::error_code> results) {
  std::lock_guard lock(state_->mutex);
  for (const auto& r : results) state_->scripts[static_cast<std::size_t>(call)].push_back({r, false});
  return *this;
}
FakeSystem& FakeSystem::fail(Call call, std::error_code error, int times) {
  std::lock_guard lock(state_->mutex);
  for (int i = 0; i < times; ++i) state_->scripts[static_cast<std::size_t>(call)].push_back({error, false});
  return *this;
}
FakeSystem& FakeSystem::fail(Call call, std::errc error, int times) {
  return fail(call, make_system_error(static_cast<int>(error)), times);
}
FakeSystem& FakeSystem::time_out(int times) {
  std::lock_guard lock(state_->mutex);
  for (int i = 0; i < times; ++i) state_->scripts[static_cast<std::size_t>(Call::wait_writable)].push_back({{}, true});
  return *this;
}

std::vector<CallRecord> FakeSystem::calls() const {
  std::lock_guard lock(state_->mutex);
  return state_->calls;
}
std::size_t FakeSystem::count(Call call) const {
  std::lock_guard lock(state_->mutex);
  std::size_t n = 0;
  for (const auto& c : state_->calls) n += c.call == call ? 1 : 0;
  return n;
}
int FakeSystem::opened() const {
  std::lock_guard lock(state_->mutex);
  return state_->opened;
}
int FakeSystem::closed() const {
  std::lock_guard lock(state_->mutex);
  return state_->closed;
}
int FakeSystem::open_handles() const {
  std::lock_guard lock(state_->mutex);
  return state_->opened - state_->closed;
}
int FakeSystem::bad_closes() const {
  std::lock_guard lock(state_->mutex);
  return state_->bad_closes;
}

std::optional<int> FakeSystem::option_value(native_handle_type h, SocketOption option) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->handles.find(h);
  if (it == state_->handles.end()) return std::nullopt;
  auto o = it->second.options.find(option);
  if (o == it->second.options.end()) return std::nullopt;
  return o->second;
}

expected<native_handle_type, std::error_code> FakeSystem::open_socket(Family family, bool nonblocking) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::open_socket, .value = nonblocking ? 1 : 0};
  if (auto o = state_->next(Call::open_socket); o && o->error) {
    r.result = o->error;
    return unexpected(state_->record(r));
  }
  r.handle = state_->next_handle++;
  state_->handles.emplace(r.handle, Handle{.family = family});
  ++state_->opened;
  state_->record(r);
  return r.handle;
}

std::error_code FakeSystem::set_option(native_handle_type h, SocketOption option, int value) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::set_option, .handle = h, .option = option, .value = value};
  std::optional<Outcome> o;
  Handle* handle = state_->start(r, o);
  if (!r.result) handle->options[option] = value;
  return state_->record(r);
}

std::error_code FakeSystem::set_nonblocking(native_handle_type h, bool on) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::set_nonblocking, .handle = h, .value = on ? 1 : 0};
  std::optional<Outcome> o;
  state_->start(r, o);
  return state_->record(r);
}

std::error_code FakeSystem::bind(native_handle_type h, const Endpoint& local) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::bind, .handle = h, .endpoint = local};
  std::optional<Outcome> o;
  Handle* handle = state_->start(r, o);
  if (!r.result) {
    // With IP_BIND_ADDRESS_NO_PORT the port stays 0 until connect, as in Linux.
    const bool defer = handle->options.contains(SocketOption::bind_address_no_port) &&
                       handle->options[SocketOption::bind_address_no_port] != 0;
    handle->local = local.port() != 0 || defer ? local : local.with_port(state_->next_port++);
  }
  return state_->record(r);
}

std::error_code FakeSystem::connect(native_handle_type h, const Endpoint& remote) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::connect, .handle = h, .endpoint = remote};
  std::optional<Outcome> o;
  Handle* handle = state_->start(r, o);
  if (handle && !o) state_->route_connect(*handle, remote, r.result);
  if (handle && (!r.result || is_in_progress(r.result))) {
    handle->remote = remote;
    if (!handle->local)
      handle->local = state_->ephemeral(handle->family);
    else if (handle->local->port() == 0)
      handle->local = handle->local->with_port(state_->next_port++);
  }
  return state_->record(r);
}

expected<bool, std::error_code> FakeSystem::wait_writable(native_handle_type h, std::chrono::milliseconds timeout) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::wait_writable, .handle = h};
  std::optional<Outcome> o;
  const Handle* handle = state_->start(r, o);
  state_->record(r);
  if (r.result) return unexpected(r.result);
  if (!o && handle && handle->ready_at) return state_->first_ready(std::span(&h, 1), timeout).has_value();
  return !(o && o->timeout);
}

expected<std::optional<std::size_t>, std::error_code>
FakeSystem::wait_any_writable(std::span<const native_handle_type> handles, std::chrono::milliseconds timeout) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::wait_any_writable, .value = static_cast<int>(handles.size())};
  if (auto o = state_->next(Call::wait_any_writable)) r.result = o->error;
  state_->record(r);
  if (r.result) return unexpected(r.result);
  return state_->first_ready(handles, timeout);
}

FakeSystem& FakeSystem::route(const Endpoint& remote, FakeRoute route, ManualTimer& clock) {
  std::lock_guard lock(state_->mutex);
  state_->routes.emplace_back(remote, route);
  state_->clock = &clock;
  return *this;
}

std::error_code FakeSystem::pending_error(native_handle_type h) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::pending_error, .handle = h};
  std::optional<Outcome> o;
  const Handle* handle = state_->start(r, o);
  if (!o && handle && handle->ready_at) r.result = handle->outcome;
  return state_->record(r);
}

expected<Endpoint, std::error_code> FakeSystem::local_endpoint(native_handle_type h) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::local_endpoint, .handle = h};
  std::optional<Outcome> o;
  Handle* handle = state_->start(r, o);
  state_->record(r);
  if (r.result) return unexpected(r.result);
  if (handle->local) return *handle->local;
  return handle->family == Family::ipv4 ? Endpoint::any_v4() : Endpoint::any_v6();
}

expected<Endpoint, std::error_code> FakeSystem::remote_endpoint(native_handle_type h) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::remote_endpoint, .handle = h};
  std::optional<Outcome> o;
  Handle* handle = state_->start(r, o);
  if (!r.result && !handle->remote) r.result = make_system_error(ENOTCONN);
  state_->record(r);
  if (r.result) return unexpected(r.result);
  return *handle->remote;
}

std::error_code FakeSystem::close(native_handle_type h) {
  std::lock_guard lock(state_->mutex);
  CallRecord r{.call = Call::close, .handle = h};
  Handle* handle = state_->find(h);
  auto o = state_->next(Call::close);
  if (!handle) {
    ++state_->bad_closes;
    r.result = bad_handle();
  } else {
    handle->open = false;  // released even when an error is scripted, as close(2) does
    ++state_->closed;
    r.result = o ? o->error : std::error_code{};
  }
  return state_->record(r);
}

}  // namespace connpolicy
