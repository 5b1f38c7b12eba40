namespace NnUnet.Cluster.Sweeps;

/// <summary>
/// Look-ahead for one dispatch decision. With estimated durations it searches the list schedules of the remaining
/// work (depth-first branch and bound over job groups, their dependencies and the workers' estimated free times) and
/// returns the group whose job the idle worker should start now: the first step of the shortest schedule found.
/// At every step the critical-path-first choice is explored first, so the first schedule found is exactly what plain
/// critical-path-first list scheduling does, and another first step is taken only when its schedule is strictly
/// shorter: the rule stays "critical path first" wherever that is as good, and the result is never worse than it in
/// the estimated model, even when the node budget cuts the search short.
/// Why: with few GPUs, starting every low-res fold first can leave the long 3d_fullres folds for the end, where they
/// run alone, and the sweep ends later than it could (measured against the optimum in bench/README.md, "scheduler").
/// </summary>
public static class DispatchPlanner
{
    /// <summary>One group of interchangeable jobs (the folds of a configuration, or a final stage).</summary>
    /// <param name="Durations">estimated seconds of its pending jobs, in the order the group hands them out.</param>
    /// <param name="DependsOn">groups (indices) all of whose jobs must end before any job of this group starts.</param>
    /// <param name="RunningUntil">estimated end of its running jobs, seconds from now (0 when none).</param>
    /// <param name="Tail">estimated seconds from the end of one of its jobs to the end of the sweep (critical path).</param>
    public sealed record Group(double[] Durations, int[] DependsOn, double RunningUntil, double Tail);

    private const double Tolerance = 1e-6;

    /// <summary>
    /// Times closer than this are the same moment. Sums of estimates differ in the last bits (1.9 vs
    /// 1.9000000000000008); without it a dependency "ends after" a worker frees up at what is the same moment, and that
    /// state shares its memo key (microseconds) with the one where it does not, which hides the better schedule.
    /// </summary>
    private const double TimeEpsilon = 1e-9;

    /// <summary><see cref="Choose"/>'s answer when the asking worker should stay idle until the next job ends.</summary>
    public const int Wait = -1;

    /// <summary>
    /// The group (one of <paramref name="candidates"/>, given in critical-path-first order) to start on an idle worker
    /// now, or <see cref="Wait"/> when leaving it idle until the next estimated end of a job gives a strictly shorter
    /// schedule (a job that would start now would still hold the worker when the jobs it should run become ready, such
    /// as the cascade when the last low-res fold ends). <paramref name="workerFreeAt"/>: every worker's estimated free
    /// time in seconds from now (0 for idle ones, including the asking worker). <paramref name="plannedMakespan"/>: the
    /// estimated end of the chosen schedule.
    /// </summary>
    public static int Choose(IReadOnlyList<Group> groups, double[] workerFreeAt, IReadOnlyList<int> candidates, int nodeBudget,
        out double plannedMakespan)
    {
        if (candidates.Count == 0) throw new ArgumentException("no candidate group to choose from");
        if (workerFreeAt.Length == 0 || workerFreeAt.Min() > 0) throw new ArgumentException("no idle worker to plan for");
        var search = new Search(groups, nodeBudget);
        var free = (double[])workerFreeAt.Clone();
        Array.Sort(free);
        var next = new int[groups.Count];
        var lastEnd = new double[groups.Count];
        for (int g = 0; g < groups.Count; g++) lastEnd[g] = groups[g].RunningUntil;
        search.Run(free, next, lastEnd, candidates);
        plannedMakespan = search.Best;
        return search.BestFirst;
    }

    private sealed class Search(IReadOnlyList<Group> groups, int nodeBudget)
    {
        private readonly int[] _topological = TopologicalOrder(groups);
        private readonly HashSet<long> _visited = [];
        private readonly double[] _finish = new double[groups.Count];
        private int _nodes;
        public double Best = double.PositiveInfinity;
        public int BestFirst = int.MinValue;

        private int _rootBudget;

        // the first schedule found (critical path first) is always completed; the budget bounds the search for better
        // ones. Each first step gets its share, so that a deep search below the first cannot starve the others.
        private bool OverBudget => _nodes > _rootBudget && !double.IsPositiveInfinity(Best);

        public void Run(double[] free, int[] next, double[] lastEnd, IReadOnlyList<int> rootCandidates)
        {
            // the asking worker gets one of the candidates now, or waits (tried last: it must be strictly better);
            // the rest is searched freely
            double? wakeUp = WakeTime(free, lastEnd, 0);
            int share = nodeBudget / (rootCandidates.Count + (wakeUp is null ? 0 : 1));
            _rootBudget = 0;
            foreach (var g in rootCandidates)
            {
                _rootBudget = _nodes + share;
                double before = Best;
                var (f, n, e) = Start(free, next, lastEnd, g, 0);
                Explore(f, n, e);
                // leaves only lower Best when strictly shorter, so a change here means this first step is better
                if (Best < before) BestFirst = g;
            }
            if (wakeUp is not { } wake) return;
            _rootBudget = _nodes + share;
            double beforeWaiting = Best;
            var waiting = (double[])free.Clone();
            waiting[0] = wake;
            Array.Sort(waiting);
            Explore(waiting, next, lastEnd);
            if (Best < beforeWaiting) BestFirst = Wait;
        }

        /// <summary>The next moment after <paramref name="t"/> at which something changes: a worker frees up or a dependency ends.</summary>
        private static double? WakeTime(double[] free, double[] lastEnd, double t)
        {
            double wake = double.PositiveInfinity;
            foreach (var f in free) if (f > t + TimeEpsilon) wake = Math.Min(wake, f);
            foreach (var e in lastEnd) if (e > t + TimeEpsilon) wake = Math.Min(wake, e);
            return double.IsPositiveInfinity(wake) ? null : wake;
        }

        /// <summary>Searches below this node; a complete schedule shorter than <see cref="Best"/> becomes the new best.</summary>
        private void Explore(double[] free, int[] next, double[] lastEnd)
        {
            double t = free[0];
            bool done = true;
            for (int g = 0; g < groups.Count; g++) done &= next[g] == groups[g].Durations.Length;
            if (done)
            {
                double end = 0;
                foreach (var e in lastEnd) end = Math.Max(end, e);
                if (end < Best * (1 - Tolerance)) Best = end;
                return;
            }
            _nodes++;
            if (OverBudget || LowerBound(free, next, lastEnd, t) >= Best * (1 - Tolerance)) return;
            // the same situation reached by another order was searched already
            if (!_visited.Add(Key(free, next, lastEnd))) return;

            foreach (var g in ReadyByPriority(next, lastEnd, t))
            {
                var (f, n, e) = Start(free, next, lastEnd, g, t);
                Explore(f, n, e);
            }
            // leave this worker idle until something changes (a worker frees up, a dependency ends): a waiting group
            // (the cascade) may deserve it more than anything ready now
            if (WakeTime(free, lastEnd, t) is { } wake)
            {
                var f = (double[])free.Clone();
                f[0] = wake;
                Array.Sort(f);
                Explore(f, next, lastEnd);
            }
        }

        private (double[] free, int[] next, double[] lastEnd) Start(double[] free, int[] next, double[] lastEnd, int g, double t)
        {
            var f = (double[])free.Clone();
            var n = (int[])next.Clone();
            var e = (double[])lastEnd.Clone();
            double end = t + groups[g].Durations[n[g]++];
            e[g] = Math.Max(e[g], end);
            f[0] = end;
            Array.Sort(f);
            return (f, n, e);
        }

        private List<int> ReadyByPriority(int[] next, double[] lastEnd, double t)
        {
            var ready = new List<int>();
            for (int g = 0; g < groups.Count; g++)
                if (next[g] < groups[g].Durations.Length && DependenciesEnded(g, next, lastEnd, t)) ready.Add(g);
            // critical path first (own duration + tail), then the longer job, then group order
            ready.Sort((a, b) =>
            {
                double da = groups[a].Durations[next[a]], db = groups[b].Durations[next[b]];
                int byRank = (db + groups[b].Tail).CompareTo(da + groups[a].Tail);
                if (byRank != 0) return byRank;
                int byOwn = db.CompareTo(da);
                return byOwn != 0 ? byOwn : a.CompareTo(b);
            });
            return ready;
        }

        private bool DependenciesEnded(int g, int[] next, double[] lastEnd, double t)
        {
            foreach (var h in groups[g].DependsOn)
                if (next[h] < groups[h].Durations.Length || lastEnd[h] > t + TimeEpsilon) return false;
            return true;
        }

        /// <summary>max(what has been scheduled, the average load, the longest remaining dependency chain).</summary>
        private double LowerBound(double[] free, int[] next, double[] lastEnd, double t)
        {
            double bound = 0, load = 0;
            foreach (var f in free) load += f;
            foreach (var g in _topological)
            {
                var durations = groups[g].Durations;
                double longest = 0;
                for (int i = next[g]; i < durations.Length; i++)
                {
                    load += durations[i];
                    longest = Math.Max(longest, durations[i]);
                }
                double ready = t;
                foreach (var h in groups[g].DependsOn) ready = Math.Max(ready, _finish[h]);
                _finish[g] = Math.Max(lastEnd[g], next[g] < durations.Length ? ready + longest : 0);
                bound = Math.Max(bound, _finish[g]);
            }
            return Math.Max(bound, load / free.Length);
        }

        /// <summary>64-bit FNV-1a of the state (times in microseconds); a collision could only skip a branch, never corrupt a schedule.</summary>
        private static long Key(double[] free, int[] next, double[] lastEnd)
        {
            ulong hash = 14695981039346656037UL;
            void Mix(long value)
            {
                hash ^= (ulong)value;
                hash *= 1099511628211UL;
            }
            foreach (var f in free) Mix((long)Math.Round(f * 1e6));
            foreach (var n in next) Mix(n);
            foreach (var e in lastEnd) Mix((long)Math.Round(e * 1e6));
            return (long)hash;
        }

        private static int[] TopologicalOrder(IReadOnlyList<Group> groups)
        {
            var order = new List<int>(groups.Count);
            var state = new int[groups.Count]; // 0 new, 1 visiting, 2 done
            void Visit(int g)
            {
                if (state[g] == 2) return;
                if (state[g] == 1) throw new ArgumentException("job groups depend on each other in a cycle");
                state[g] = 1;
                foreach (var h in groups[g].DependsOn) Visit(h);
                state[g] = 2;
                order.Add(g);
            }
            for (int g = 0; g < groups.Count; g++) Visit(g);
            return order.ToArray();
        }
    }
}
