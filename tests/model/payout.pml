/*
 * payout.pml: a SPIN model of cashout's payout protocol (issue 10).
 *
 * One cashout request, already APPROVED, paid out through one provider by two dispatcher
 * tasks (duplicate queue deliveries, the sweep), while the merchant cancels, an operator
 * rejects and retries, provider notifications and polls come in, and the provider moves the
 * payout along. Dispatchers may crash between any two of their steps. Exhaustive search checks:
 *
 *   P1  at most one payout: the provider's ledger never holds two payouts for our reference;
 *   P2  never ended while the provider holds the money: whenever the status is CANCELLED,
 *       REJECTED or PAYMENT_PROCESSOR_ERROR and the provider holds a live or paid payout for
 *       the reference, `attention` is set.
 *
 * docs/model-check.md explains the model, what it abstracts and how to run it
 * (scripts/model-check). Comments below map each step to the code.
 *
 * Broken variants (spin -DBROKEN_xxx), each of which SPIN must catch:
 *   BROKEN_NO_LOOKUP     the dispatcher creates without looking the payout up first
 *   BROKEN_NO_LEASE      the claim does not exclude a second dispatcher
 *   BROKEN_LOCAL_CANCEL  cancel of an APPROVED-with-dispatch or PPE request is local (no lookup)
 *   BROKEN_GIVE_UP       after MAX attempts with failing lookups the dispatcher gives up into
 *                        PPE even when a create may have reached the provider
 * Knobs: -DMAX_ATTEMPTS=n (default 2), -DMAX_CRASHES=n (default 2), -DUNBOUNDED_CRASHES (no
 * budget: a crash possible at every pause), -DUNIQUE_REFS=0|1 (default:
 * both, chosen nondeterministically at the start), -DONLY_P1 (check P1 alone),
 * -DREACH='(expr)' (vacuity check: asserts expr never holds, so a "violation" shows it can),
 * -DLATE_CREATE (drops an assumption of the design, see below: SPIN then finds errors).
 *
 * Promela pitfall kept in mind throughout: a choice (`if`/`do`) inherits the `else` of an
 * `if ... else` that starts one of its options, which silently disables the option while any
 * other is executable. Every option that starts with such an `if` is written `true -> ...`.
 */

#ifndef MAX_ATTEMPTS
#define MAX_ATTEMPTS 2
#endif
#ifndef MAX_CRASHES
#define MAX_CRASHES 2
#endif

/* ---- the request: CashoutRequest (shared/core/src/cashout.rs) ------------------------------ */

/* status: CashoutStatus. REQUESTED / UNDER_REVIEW are not modelled: it starts APPROVED. */
#define APPROVED        1
#define PENDING_PAYMENT 2
#define PAID            3
#define REJECTED        4
#define CANCELLED       5
#define PPE             6   /* PAYMENT_PROCESSOR_ERROR */

/* DispatchState's lease: free, held by dispatcher 1 or 2, or held by a task that died */
#define FREE   0
#define ORPHAN 3

#define NONE   2            /* no provider_reference (the ledger's slots are 0 and 1) */

byte status      = APPROVED;
bool dispatched  = false;   /* dispatch != None: claimed at least once */
byte lease       = FREE;
byte attempts    = 0;       /* DispatchState::attempts, saturating at MAX_ATTEMPTS */
bool unresolved  = false;   /* DispatchState::unresolved */
bool attention   = false;   /* attention notes non-empty */
byte ref         = NONE;    /* provider_reference: the ledger slot of our payout */
bool by_provider = false;   /* status_reason: the provider ended that payout (ended_by_this_payout) */

/* The compare-and-set on `version`, without an unbounded counter: a process that reads the
 * request to write it back later on that version sets its bit; every write clears all bits;
 * the conditional write succeeds iff its bit is still set. Only the merchant's and operator's
 * confirmed cancel/reject (CAS on the version read before the lookup) need it: every other
 * write re-reads and re-decides on a lost race (App::mutate / mutate_from), which is the same
 * as deciding atomically on the current state, and the dispatcher's read + claim is one step
 * for the same reason (a lost claim is "retry later"). */
bool fresh_m = false;       /* merchant, App::cancel */
bool fresh_o = false;       /* operator, App::reject */
#define WRITTEN  fresh_m = false; fresh_o = false

/* ---- the provider's ledger ----------------------------------------------------------------- */

#define P_NONE      0       /* empty slot / a lookup's "no payout" */
#define P_PENDING   1       /* live, still cancellable */
#define P_HELD      2       /* live, no longer cancellable (on hold, delivered) */
#define P_PAID      3
#define P_REJECTED  4
#define P_CANCELLED 5
#define P_FAILED    6       /* a lookup that failed (timeout, 5xx): no answer */
#define LIVE(s)     ((s) == P_PENDING || (s) == P_HELD)
#define HOLDS(s)    (LIVE(s) || (s) == P_PAID)

byte payout[2];             /* two slots: a second payout already violates P1 */
byte npayouts = 0;
bool unique_refs;           /* a second create with our reference answers "exists" */

#ifdef LATE_CREATE
/* An ambiguous create still in flight, which the provider may apply after answering lookups
 * "none" (a request that outlived the client's timeout, or a lookup index lagging behind). The
 * design assumes this cannot happen: a lookup made after the create's answer sees the create
 * if it was made. */
bool in_flight = false;
#endif

byte crashes = 0;           /* crash budget of the dispatchers (lease expiries included) */

/* ---- properties ---------------------------------------------------------------------------- */

#define P1 (npayouts <= 1)
#ifdef ONLY_P1
#define P2 true
#else
#define P2 (!(status == CANCELLED || status == REJECTED || status == PPE) \
            || !(HOLDS(payout[0]) || HOLDS(payout[1])) || attention)
#endif
#ifdef REACH
#define P3 (!(REACH))
#else
#define P3 true
#endif

/* An invariant monitor (Holzmann): blocked while the invariants hold, so it adds no states;
 * in any reachable state that breaks one, it can run and the assertion fails. */
active proctype monitor() {
end_watch:
    atomic { !(P1 && P2 && P3) -> assert(P1); assert(P2); assert(P3) }
}

/* ---- steps shared by several processes ----------------------------------------------------- */

/* PayoutProvider::find_payout by our reference: a payout (slot i, state s), none (P_NONE),
 * or a failure (P_FAILED). Inside atomic. */
inline find_payout(i, s) {
    if
    :: npayouts == 0       -> i = 0; s = P_NONE
    :: payout[0] != P_NONE -> i = 0; s = payout[0]
    :: payout[1] != P_NONE -> i = 1; s = payout[1]
    :: true                -> i = 0; s = P_FAILED
    fi
}

/* CashoutRequest::record_provider_payout (App::adopt, App::poll, App::handle_provider_event,
 * the answers of cancel and reject): what the provider said about slot i, state s (possibly
 * stale by now), applied to the current request. Moves with the provider and never backwards;
 * flags attention for a live or paid payout of a request we ended (PayoutAfterEnd, also noted
 * when PPE moves on) and for a second payout id (ConflictingPayout). Inside atomic. */
inline record_provider_payout(i, s) {
    if
    :: ref != NONE && ref != i ->
        if :: !attention -> attention = true; WRITTEN :: else -> skip fi
    :: else ->
        if
        :: status == APPROVED || status == PPE ->
            if
            :: status == PPE && HOLDS(s) -> attention = true
            :: else -> skip
            fi;
            if
            :: LIVE(s)          -> status = PENDING_PAYMENT; ref = i; WRITTEN
            :: s == P_PAID      -> status = PAID;            ref = i; WRITTEN
            :: s == P_REJECTED  -> status = REJECTED;  ref = i; by_provider = true; WRITTEN
            :: s == P_CANCELLED -> status = CANCELLED; ref = i; by_provider = true; WRITTEN
            fi
        :: status == PENDING_PAYMENT ->
            if
            :: LIVE(s)          -> if :: ref != i -> ref = i; WRITTEN :: else -> skip fi
            :: s == P_PAID      -> status = PAID;            ref = i; WRITTEN
            :: s == P_REJECTED  -> status = REJECTED;  ref = i; by_provider = true; WRITTEN
            :: s == P_CANCELLED -> status = CANCELLED; ref = i; by_provider = true; WRITTEN
            fi
        :: status == PAID ->
            if
            :: s == P_REJECTED  -> status = REJECTED; by_provider = true; WRITTEN  /* reversal */
            :: else -> skip                                                       /* stale */
            fi
        :: status == CANCELLED || status == REJECTED ->
            if
            /* not ended_by_this_payout: that payout's end is final at the provider, so a live
             * or paid report of it is stale */
            :: HOLDS(s) && !(by_provider && ref == i) && !attention ->
                attention = true; ref = i; WRITTEN
            :: else -> skip
            fi
        fi
    fi;
    printf("  recorded slot %d state %d: status %d attention %d\n", i, s, status, attention)
}

/* ---- 1. dispatcher: App::dispatch (shared/app/src/dispatch.rs) ----------------------------- */

/* Each label below is a pause between two steps; each step is one atomic interaction with the
 * store or the provider. At a pause the task may, instead of its next step, crash or be killed
 * by its lease's expiry (the two are the same here): its local state is lost and the queue
 * redelivers the message, so the run starts again from the top. A lease left by a dead task
 * is ORPHAN until it lapses (the provider process below frees it at any time). A provider call
 * with no effect at the provider (a lookup, a refused create) is merged with the write that
 * records its answer: crashing between them is the same as crashing before the call. */
#ifdef UNBOUNDED_CRASHES
#define CAN_CRASH  true             /* any number of crashes, not counted */
#else
#define CAN_CRASH  (crashes < MAX_CRASHES) -> crashes++
#endif
#define CRASH \
    :: atomic { CAN_CRASH; \
                printf("d%d: crashes (lease %d)\n", me, lease); \
                if :: lease == me -> lease = ORPHAN :: else -> skip fi; \
                forget(); goto end_idle }

inline forget() { prior = false; att = 0; i = 0; s = 0 }

/* CashoutRequest::release_dispatch: the attempt ends without a payout to adopt; the lease is
 * freed and what was learnt recorded, unresolved := keep (ProviderKnowledge). Inside atomic. */
inline release(keep) {
    if :: lease == me -> lease = FREE :: else -> skip fi;
    unresolved = keep;
    WRITTEN;
    printf("d%d: release, unresolved := %d\n", me, keep)
}

/* CashoutRequest::record_dispatch_failure: REJECTED (declined) or PPE (configuration error,
 * giving up), only from APPROVED; the lease freed. Inside atomic. */
inline fail_dispatch(to) {
    if
    :: status == APPROVED ->
        status = to;
        if :: lease == me -> lease = FREE :: else -> skip fi;
        unresolved = false;
        WRITTEN;
        printf("d%d: record_dispatch_failure -> status %d\n", me, to)
    :: else -> skip
    fi
}

proctype dispatcher(byte me) {
    bool prior;     /* prior_unresolved: unresolved as the claim found it */
    byte att;       /* attempts after the claim */
    byte i;         /* the ledger slot the provider answered about */
    byte s;         /* its state in that answer, or P_NONE / P_FAILED */

end_idle:
    do
    :: atomic {
        /* A dispatch task is delivered (queue, duplicate, sweep). Read the request: not
         * APPROVED -> done; lease held (by another) -> retry later; both are no step at all.
         * Else claim with a CAS write, CashoutRequest::begin_dispatch: take the lease,
         * attempts + 1, unresolved := true, remember prior_unresolved. */
#ifdef BROKEN_NO_LEASE
        status == APPROVED ->
#else
        status == APPROVED && lease == FREE ->
#endif
        prior = unresolved;
        lease = me;
        if :: attempts < MAX_ATTEMPTS -> attempts++ :: else -> skip fi;
        att = attempts;
        unresolved = true;
        dispatched = true;
        WRITTEN;
        printf("d%d: claim, attempt %d, prior_unresolved %d\n", me, att, prior)
       }
#ifndef BROKEN_NO_LOOKUP
claimed:
        /* PayoutProvider::find_payout before any create */
        if
        CRASH
        :: atomic { true ->
            find_payout(i, s);
            printf("d%d: lookup -> slot %d state %d\n", me, i, s);
            if
            :: s == P_FAILED -> goto lookup_failed
            :: s == P_NONE   -> skip                 /* on to the fence and the create */
            :: else          -> goto adopt
            fi
           }
        fi;
#endif
fence:
        /* The fence: create only while the lease is still valid. It is a check of the task's
         * own clock against the lease it took, not a read of the store; here a task whose lease
         * expires is killed at once, so a live task always passes it. Unbroken, the model
         * asserts what that relies on: a live task past its claim still holds the lease.
         * Then PayoutProvider::create_payout. */
        if
        CRASH
        :: atomic { true ->
#ifndef BROKEN_NO_LEASE
            assert(lease == me);
#endif
            if
            :: unique_refs && npayouts > 0 ->
                /* "exists": the adapter answers with the existing payout */
                i = 0; s = payout[0];
                printf("d%d: create -> exists (slot 0 state %d)\n", me, s);
                if
                :: true -> goto adopt
                :: true -> s = P_NONE; goto ambiguous          /* or a timeout */
                fi
            :: else -> skip
            fi;
            if
            :: true -> s = P_PENDING                           /* created */
            :: true -> s = P_NONE                              /* created, the answer lost */
            :: true ->                                         /* not created, no answer */
                printf("d%d: create -> ambiguous, not created\n", me);
                s = P_NONE; goto ambiguous
#ifdef LATE_CREATE
            :: !in_flight ->                                   /* no answer, still in flight */
                printf("d%d: create -> ambiguous, still in flight\n", me);
                in_flight = true; s = P_NONE; goto ambiguous
#endif
            :: true ->                                         /* 429 / not sent */
                printf("d%d: create -> retryable, not created\n", me);
                release(false);
                if
                :: att >= MAX_ATTEMPTS -> if :: true -> fail_dispatch(PPE) :: true -> skip fi
                :: else -> skip
                fi;
                forget(); goto end_idle
            :: true ->                                         /* declined */
                printf("d%d: create -> declined\n", me);
                fail_dispatch(REJECTED); forget(); goto end_idle
            :: true ->                                         /* configuration error */
                printf("d%d: create -> configuration error\n", me);
                fail_dispatch(PPE); forget(); goto end_idle
            fi;
            /* a new payout at the provider */
            if
            :: npayouts < 2 -> i = npayouts; payout[i] = P_PENDING; npayouts++
            :: else -> i = 0                                   /* full: P1 is already broken */
            fi;
            if
            :: s == P_PENDING ->
                printf("d%d: create -> created slot %d\n", me, i); goto adopt
            :: else ->
                printf("d%d: create -> ambiguous, created slot %d\n", me, i); goto ambiguous
            fi
           }
        fi;

ambiguous:
        /* the create's outcome is unknown: look up again. Found -> adopt; none -> nothing is
         * there (unresolved := false); the lookup fails -> it may be (unresolved stays true) */
        if
        CRASH
        :: atomic { true ->
            find_payout(i, s);
            printf("d%d: lookup -> slot %d state %d\n", me, i, s);
            if
            :: s == P_FAILED -> release(true);  forget(); goto end_idle
            :: s == P_NONE   -> release(false); forget(); goto end_idle
            :: else          -> goto adopt
            fi
           }
        fi;

lookup_failed:
        /* the lookup before the create failed: release with unresolved := prior_unresolved; at
         * MAX attempts give up into PPE only if nothing can exist (not prior_unresolved), else
         * flag attention (AttentionReason::UnresolvedDispatch) and keep trying */
        if
        CRASH
        :: atomic { true ->
            release(prior);
            if
            :: att >= MAX_ATTEMPTS && !prior -> if :: true -> fail_dispatch(PPE) :: true -> skip fi
            :: att >= MAX_ATTEMPTS && prior ->
#ifdef BROKEN_GIVE_UP
                if :: true -> fail_dispatch(PPE) :: true -> skip fi
#else
                attention = true;
                printf("d%d: attention (unresolved dispatch)\n", me)
#endif
            :: else -> skip
            fi;
            forget(); goto end_idle
           }
        fi;

adopt:
        /* App::adopt: record_provider_payout on the claimed request (re-decided on a lost
         * race), the lease released, unresolved := false */
        if
        CRASH
        :: atomic { true ->
            printf("d%d: adopt\n", me);
            record_provider_payout(i, s);
            if :: lease == me -> lease = FREE :: else -> skip fi;
            unresolved = false;
            WRITTEN;
            forget()
           }
        fi
    od
}

/* ---- 2. merchant cancel: App::cancel (shared/app/src/review.rs) ----------------------------- */

/* An HTTP call: it may fail or die at any point, which only ends the call, and the merchant
 * may call again at any time. Ending before a write is the same as not calling, so the only
 * failure modelled is the loss of the provider's answer to the cancel. */
active proctype merchant() {
    byte i, s;
end_idle:
    do
    :: atomic {
        /* read; CashoutRequest::cancel decides */
        status == APPROVED || status == PPE || status == PENDING_PAYMENT ->
        if
        :: status == APPROVED && !dispatched ->             /* nothing dispatched: local */
            status = CANCELLED; WRITTEN;
            printf("m: cancel, local\n"); goto end_idle
        :: status == PENDING_PAYMENT ->                     /* cancel it at the provider */
            i = ref; goto cancel_at_provider
        :: else ->                                          /* APPROVED with dispatch, PPE */
            if
            :: lease != FREE -> goto end_idle               /* 409 DispatchLeased */
            :: else -> fresh_m = true                       /* remember the version read */
            fi
        fi
       }
#ifdef BROKEN_LOCAL_CANCEL
        /* local: CAS CANCELLED on the version read, no lookup */
        atomic {
            if :: fresh_m -> status = CANCELLED; WRITTEN; printf("m: cancel, local (broken)\n")
               :: else -> skip
            fi;
            fresh_m = false; goto end_idle
        }
#else
        /* PayoutProvider::find_payout */
        atomic {
            find_payout(i, s);
            printf("m: lookup -> slot %d state %d\n", i, s);
            if
            :: s == P_FAILED -> fresh_m = false; i = 0; s = 0; goto end_idle   /* an error */
            :: s == P_NONE   -> skip
            :: LIVE(s)       -> fresh_m = false; goto cancel_at_provider
            :: else          -> fresh_m = false; goto record_answer        /* final: record it */
            fi
        }
        /* none: CashoutRequest::cancel_confirmed, a CAS on the version read before the lookup;
         * a lost race re-decides (the merchant's next call) */
        atomic {
            if :: fresh_m -> status = CANCELLED; WRITTEN; printf("m: cancel_confirmed\n")
               :: else -> skip
            fi;
            fresh_m = false; i = 0; s = 0; goto end_idle
        }
#endif
cancel_at_provider:
        /* PayoutProvider::cancel_payout: cancels only a pending payout, and may refuse; answers
         * with the payout's state */
        atomic {
            if
            :: payout[i] == P_PENDING -> payout[i] = P_CANCELLED
            :: true -> skip
            fi;
            s = payout[i];
            printf("m: cancel at the provider -> slot %d state %d\n", i, s)
        }
record_answer:
        if
        :: atomic { i = 0; s = 0 }                                      /* the answer is lost */
        :: atomic { true -> record_provider_payout(i, s); i = 0; s = 0 }  /* recorded */
        fi
    od
}

/* ---- 3. and 4. operator: App::reject, App::retry (shared/app/src/review.rs) ----------------- */

active proctype operator() {
    byte i, s;
end_idle:
    do
    :: atomic {
        /* App::retry, CashoutRequest::retry: PPE -> APPROVED, attempts reset, unresolved kept */
        status == PPE -> status = APPROVED; attempts = 0; WRITTEN; printf("o: retry\n")
       }
    :: atomic {
        /* App::reject: read; CashoutRequest::reject decides (PENDING_PAYMENT on: refused) */
        status == APPROVED || status == PPE ->
        if
        :: status == APPROVED && !dispatched ->
            status = REJECTED; WRITTEN; printf("o: reject, local\n"); goto end_idle
        :: else ->
            if
            :: lease != FREE -> goto end_idle               /* 409 DispatchLeased */
            :: else -> fresh_o = true
            fi
        fi
       }
        /* PayoutProvider::find_payout */
        atomic {
            find_payout(i, s);
            printf("o: lookup -> slot %d state %d\n", i, s);
            if
            :: s == P_FAILED -> fresh_o = false; i = 0; s = 0; goto end_idle
            :: s == P_NONE   -> skip
            :: else          -> fresh_o = false; goto adopt_found
            fi
        }
        /* none: CashoutRequest::reject_confirmed, a CAS on the version read before the lookup */
        atomic {
            if :: fresh_o -> status = REJECTED; WRITTEN; printf("o: reject_confirmed\n")
               :: else -> skip
            fi;
            fresh_o = false; i = 0; s = 0; goto end_idle
        }
adopt_found:
        /* found: adopt it (record_provider_payout) and refuse the reject */
        atomic { true -> record_provider_payout(i, s); i = 0; s = 0 }
    od
}

/* ---- 5. poll and provider notification: App::poll, App::handle_provider_event --------------- */

active proctype poller() {
    byte i, s;
end_idle:
    do
    :: atomic {
        /* the provider's word on one of its payouts for our reference (a notification, or a
         * poll's answer); recorded in a later step, so possibly stale by then */
        npayouts > 0 ->
        if
        :: payout[0] != P_NONE -> i = 0
        :: payout[1] != P_NONE -> i = 1
        fi;
        s = payout[i]
       }
        atomic { printf("p: notification\n"); record_provider_payout(i, s); i = 0; s = 0 }
    od
}

/* ---- 6. the provider's own lifecycle, and lease expiry ------------------------------------- */

#define PROVIDER_MOVES(k) \
    :: atomic { payout[k] == P_PENDING -> payout[k] = P_HELD;     printf("provider: slot %d held\n", k) } \
    :: atomic { LIVE(payout[k])        -> payout[k] = P_PAID;     printf("provider: slot %d paid\n", k) } \
    :: atomic { HOLDS(payout[k])       -> payout[k] = P_REJECTED; printf("provider: slot %d rejected\n", k) }

active proctype provider() {
end_idle:
    do
    PROVIDER_MOVES(0)
    PROVIDER_MOVES(1)
    :: atomic { lease == ORPHAN -> lease = FREE; printf("lease of a dead task lapses\n") }
#ifdef LATE_CREATE
    :: atomic {
        in_flight -> in_flight = false;
        if
        :: unique_refs && npayouts > 0 -> printf("provider: late create -> exists\n")
        :: else ->
            if :: npayouts < 2 -> payout[npayouts] = P_PENDING; npayouts++ :: else -> skip fi;
            printf("provider: late create lands\n")
        fi
       }
    :: atomic { in_flight -> in_flight = false; printf("provider: late create dropped\n") }
#endif
    od
}

init {
    atomic {
#ifdef UNIQUE_REFS
        unique_refs = UNIQUE_REFS;
#else
        if :: unique_refs = true :: unique_refs = false fi;
#endif
        printf("unique_refs %d\n", unique_refs);
        printf("legend: status 1 APPROVED 2 PENDING_PAYMENT 3 PAID 4 REJECTED 5 CANCELLED 6 PPE;\n");
        printf("        payout state 0 none 1 pending 2 held 3 paid 4 rejected 5 cancelled 6 lookup failed\n");
        run dispatcher(1);
        run dispatcher(2)
    }
}
