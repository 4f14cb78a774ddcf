/*
 * pacer: see pacer.h for the rule and why.
 */
#include "pacer.h"

#include <sys/prctl.h>

#include "clock.h"

void pacer_init(struct pacer *p, uint64_t pause_ns, size_t below)
{
    p->pause_ns = pause_ns;
    p->below = below;
    p->last_ns = clock_mono_ns();
}

void pacer_thread_init(void)
{
    prctl(PR_SET_TIMERSLACK, (unsigned long)PACER_SLACK_NS, 0, 0, 0);
}

bool pacer_wants_pause(const struct pacer *p, size_t n, uint64_t now_ns)
{
    /* n items in (now - last) came "often" when n of them fit one each
     * pause_ns; written as a product so that no division is needed. */
    uint64_t since = now_ns > p->last_ns ? now_ns - p->last_ns : 0;
    return n > 0 && n < p->below && (uint64_t)n * p->pause_ns >= since;
}

bool pacer_turn(struct pacer *p, size_t n, bool may)
{
    uint64_t now = clock_mono_ns();
    bool pause = may && pacer_wants_pause(p, n, now);
    if (pause) {
        clock_sleep_ns(p->pause_ns);
        now = clock_mono_ns();
    }
    p->last_ns = now;
    return pause;
}
