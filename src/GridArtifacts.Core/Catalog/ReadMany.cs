using System.Collections.Concurrent;
using GridArtifacts.Model;

namespace GridArtifacts.Core;

/// <summary>Items read, and the per-item errors met on the way (the rest is still read).</summary>
public sealed record ReadResult<T>(IReadOnlyList<T> Items, IReadOnlyList<GridException> Errors);

/// <summary>Many named items read at once: the catalog's parts and the cmdlets read lists of records this way.</summary>
public static class ReadMany
{
    /// <summary>Records read at once when a listing needs many of them.</summary>
    public const int Concurrency = 32;

    /// <summary>Reads many named items at once, in input order; per-item errors are collected, not thrown.</summary>
    public static async Task<ReadResult<T>> AllAsync<TKey, T>(IEnumerable<TKey> names, Func<TKey, CancellationToken, Task<T>> read, CancellationToken ct)
    {
        var list = names.ToList();
        var results = new T?[list.Count];
        var errors = new ConcurrentBag<(int, GridException)>();
        await Parallel.ForEachAsync(Enumerable.Range(0, list.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Concurrency, CancellationToken = ct },
            async (i, c) =>
            {
                try { results[i] = await read(list[i], c).ConfigureAwait(false); }
                catch (GridException ex) { errors.Add((i, ex)); }
            }).ConfigureAwait(false);
        return new ReadResult<T>(
            results.Where(r => r is not null).Select(r => r!).ToList(),
            errors.OrderBy(e => e.Item1).Select(e => e.Item2).ToList());
    }
}
