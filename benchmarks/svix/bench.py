#!/usr/bin/env python3
"""Svix-server throughput bench: receiver + load generator in one script, run as two processes.

  bench.py receiver --port 18099
  bench.py load --svix http://127.0.0.1:18071 --token TOKEN --receiver http://127.0.0.1:18099 \
      --conns 32 --warmup 10 --window 30 --drain 20 --svix-pid PID --pg-user svixpg --out result.json
"""
import argparse, asyncio, json, os, pwd, statistics, sys, time

import aiohttp
from aiohttp import web

# ---------------------------------------------------------------- receiver
def run_receiver(port):
    state = {"total": 0, "ids": set(), "first": None, "last": None, "per_sec": {}}

    async def hook(request):
        await request.read()
        now = time.time()
        state["total"] += 1
        mid = request.headers.get("svix-id")
        if mid:
            state["ids"].add(mid)
        if state["first"] is None:
            state["first"] = now
        state["last"] = now
        s = int(now)
        state["per_sec"][s] = state["per_sec"].get(s, 0) + 1
        return web.Response(status=204)

    async def stats(request):
        return web.json_response({"now": time.time(), "total": state["total"], "unique": len(state["ids"]),
                                  "first": state["first"], "last": state["last"]})

    async def per_sec(request):
        return web.json_response({str(k): v for k, v in sorted(state["per_sec"].items())})

    async def reset(request):
        state.update(total=0, ids=set(), first=None, last=None, per_sec={})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_get("/per_sec", per_sec)
    app.router.add_post("/reset", reset)
    print(f"receiver pid={os.getpid()} listening on 127.0.0.1:{port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024)

# ---------------------------------------------------------------- cpu accounting
CLK = os.sysconf("SC_CLK_TCK")

def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / CLK  # utime+stime
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0

def pids_of_uid(uid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    out.append(int(d))
            except FileNotFoundError:
                pass
    return out

def total_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) / CLK, idle / CLK

def snapshot(groups):
    """groups: name -> callable returning list of pids"""
    snap = {name: sum(proc_cpu(p) for p in fn()) for name, fn in groups.items()}
    snap["_total"], snap["_idle"] = total_cpu()
    snap["_wall"] = time.time()
    return snap

def cpu_delta(a, b, ncpu):
    wall = b["_wall"] - a["_wall"]
    res = {k: round(100 * (b[k] - a[k]) / wall, 1) for k in a if not k.startswith("_")}  # % of one core
    busy = (b["_total"] - a["_total"]) - (b["_idle"] - a["_idle"])
    res["machine_busy_pct_of_all_cores"] = round(100 * busy / (b["_total"] - a["_total"]), 1)
    res["machine_busy_cores"] = round(busy / wall, 2)
    res["other_processes_pct_core"] = round(100 * busy / wall - sum(v for k, v in res.items() if k in groups_names), 1)
    return res

groups_names = set()

# ---------------------------------------------------------------- load
async def run_load(a):
    global groups_names
    hdr = {"Authorization": f"Bearer {a.token}", "Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(limit=a.conns + 8)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def rstats():
            async with s.get(a.receiver + "/stats") as r:
                return await r.json()
        await s.post(a.receiver + "/reset")
        # setup: one app, one endpoint (no event-type filter) pointing at the receiver
        async with s.post(f"{a.svix}/api/v1/app/", headers=hdr, json={"name": f"bench-{int(time.time())}"}) as r:
            app = await r.json(); assert r.status in (200, 201), (r.status, app)
        app_id = app["id"]
        async with s.post(f"{a.svix}/api/v1/app/{app_id}/endpoint/", headers=hdr,
                          json={"url": a.receiver + "/hook", "version": 1, "description": "bench receiver"}) as r:
            ep = await r.json(); assert r.status in (200, 201), (r.status, ep)
        # ~500-byte JSON body
        base = {"eventType": "bench.event", "payload": {"type": "bench.event", "seq": 0, "data": {"k": "x" * 400}}}
        body0 = json.dumps(base)
        pad = 500 - len(body0)
        if pad > 0:
            base["payload"]["data"]["k"] = "x" * (400 + pad)
        print(f"app={app_id} endpoint={ep['id']} body_bytes={len(json.dumps(base))}", flush=True)

        me, rpid = os.getpid(), a.receiver_pid
        pg_uid = pwd.getpwnam(a.pg_user).pw_uid
        groups = {"svix_server": lambda: [a.svix_pid], "postgres": lambda: pids_of_uid(pg_uid),
                  "loadgen": lambda: [me], "receiver": lambda: [rpid] if rpid else []}
        groups_names = set(groups)

        T0 = time.time(); w0 = T0 + a.warmup; w1 = w0 + a.window
        done = []            # (t_done, latency_s, ok)
        errors = {}
        stop = asyncio.Event()
        seq = 0

        async def worker():
            nonlocal seq
            while not stop.is_set():
                seq += 1
                payload = dict(base); payload["payload"] = dict(base["payload"], seq=seq)
                t = time.time()
                try:
                    async with s.post(f"{a.svix}/api/v1/app/{app_id}/msg/", headers=hdr, data=json.dumps(payload)) as r:
                        await r.read(); ok = r.status in (200, 201, 202)
                        if not ok:
                            errors[r.status] = errors.get(r.status, 0) + 1
                except Exception as e:
                    ok = False; errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                t2 = time.time()
                done.append((t2, t2 - t, ok))

        tasks = [asyncio.create_task(worker()) for _ in range(a.conns)]
        await asyncio.sleep(w0 - time.time())
        st_w0 = await rstats(); cpu0 = snapshot(groups)
        creates_w0 = sum(1 for d in done if d[2])
        await asyncio.sleep(w1 - time.time())
        st_w1 = await rstats(); cpu1 = snapshot(groups)
        creates_w1 = sum(1 for d in done if d[2])
        stop.set()
        await asyncio.gather(*tasks)
        t_stop = time.time()
        creates_total = sum(1 for d in done if d[2])
        # drain
        drain_done = None
        while time.time() < w1 + a.drain:
            st = await rstats()
            if st["unique"] >= creates_total:
                drain_done = st["last"]; break
            await asyncio.sleep(0.05)
        st_end = await rstats(); cpu2 = snapshot(groups)
        async with s.get(a.receiver + "/per_sec") as r:
            per_sec = await r.json()

    lat = sorted(d[1] for d in done if w0 <= d[0] < w1 and d[2])
    q = lambda p: round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None
    res = {
        "conns": a.conns, "warmup_s": a.warmup, "window_s": a.window, "drain_cap_s": a.drain,
        "creates_in_window": creates_w1 - creates_w0,
        "creates_per_s_window": round((creates_w1 - creates_w0) / a.window, 1),
        "deliveries_in_window": st_w1["total"] - st_w0["total"],
        "deliveries_per_s_window": round((st_w1["total"] - st_w0["total"]) / a.window, 1),
        "backlog_at_window_end": creates_w1 - st_w1["unique"],
        "creates_total": creates_total, "create_errors": errors,
        "deliveries_total": st_end["total"], "deliveries_unique_total": st_end["unique"],
        "undelivered_at_end": creates_total - st_end["unique"],
        "drain_s_after_window_end": round(drain_done - w1, 2) if drain_done else None,
        "drain_completed": drain_done is not None,
        "run_span_s_to_last_delivery": round((st_end["last"] or T0) - T0, 2),
        "deliveries_per_s_whole_run": round(st_end["total"] / ((st_end["last"] or T0) - T0), 1) if st_end["last"] else None,
        "create_latency_ms_window": {"p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": round(1000 * lat[-1], 2) if lat else None},
        "load_stopped_s_after_window_end": round(t_stop - w1, 3),
        "cpu_pct_of_one_core_window": cpu_delta(cpu0, cpu1, os.cpu_count()),
        "cpu_pct_of_one_core_drain": cpu_delta(cpu1, cpu2, os.cpu_count()),
        "receiver_per_sec_rel": {str(int(k) - int(T0)): v for k, v in per_sec.items()},
        "creates_per_sec_rel": {},
    }
    cps = {}
    for d in done:
        if d[2]:
            k = int(d[0] - T0); cps[k] = cps.get(k, 0) + 1
    res["creates_per_sec_rel"] = {str(k): v for k, v in sorted(cps.items())}
    print(json.dumps(res, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)

def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("receiver"); r.add_argument("--port", type=int, default=18099)
    l = sub.add_parser("load")
    l.add_argument("--svix", default="http://127.0.0.1:18071")
    l.add_argument("--token", required=True)
    l.add_argument("--receiver", default="http://127.0.0.1:18099")
    l.add_argument("--receiver-pid", type=int, default=0)
    l.add_argument("--svix-pid", type=int, required=True)
    l.add_argument("--pg-user", default="svixpg")
    l.add_argument("--conns", type=int, default=32)
    l.add_argument("--warmup", type=float, default=10)
    l.add_argument("--window", type=float, default=30)
    l.add_argument("--drain", type=float, default=20)
    l.add_argument("--out")
    a = p.parse_args()
    if a.cmd == "receiver":
        run_receiver(a.port)
    else:
        asyncio.run(run_load(a))

if __name__ == "__main__":
    main()
