// crew/crew.hpp — everything crew offers, in one include.
#pragma once

#include "crew/advise.hpp"
#include "crew/algorithm.hpp"
#include "crew/auto_pool.hpp"
#include "crew/child_process.hpp"
#include "crew/codec.hpp"
#include "crew/error.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/init.hpp"
#include "crew/isolated.hpp"
#include "crew/outcome.hpp"
#include "crew/process_pool.hpp"
#include "crew/thread_pool.hpp"
#include "crew/version.hpp"
#include "crew/when.hpp"
