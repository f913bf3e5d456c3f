// FFTW's planner (plan creation and destruction) is not thread-safe; every so3 call into it holds this lock.
// fftw_execute_* on an existing plan is thread-safe and needs no lock.
#pragma once

#include <mutex>

namespace eqntk::so3::detail {

[[nodiscard]] std::mutex& fftw_planner_mutex();

}  // namespace eqntk::so3::detail
