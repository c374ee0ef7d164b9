namespace GridArtifacts.Core.Stores;

/// <summary>
/// Creates an object only if its key is free, on any store; of two creators at one moment exactly one
/// gets true. Where the store creates exclusively itself (<see cref="IConditionalCreate"/>, asked of
/// the server once), that decides. Elsewhere no two creators ever write one key at once (on s3rver,
/// two PUTs of one record at one moment left it failing its checksum on every read): each writes a
/// claim of its own under the record's folder (<c>claims/&lt;time&gt;-&lt;random&gt;</c>), waits
/// <see cref="Settle"/>, and lists the claims; only the creator with the earliest claim writes the
/// record, and the others remove theirs. The winner's claim stays, so a creator that comes later
/// still sees it. That fallback is exact while the creators' clocks agree within the settle time
/// (docs/s3-compatibility.md).
/// </summary>
internal sealed class ExclusiveCreate(IObjectStore store, TimeProvider clock) : IConditionalCreate
{
    /// <summary>A claim this old with no record beside it was left by a creator that died: it is passed over.</summary>
    public static readonly TimeSpan StaleClaim = TimeSpan.FromMinutes(1);

    /// <summary>How long a creator waits after writing its claim before it reads the claims (or the record) back, on a store that cannot create exclusively.</summary>
    public TimeSpan Settle { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Whether the store creates exclusively itself (<see cref="IConditionalCreate"/>): then a create, or
    /// a claim made by creating a key, is decided by the store in one request with no settle time.
    /// </summary>
    public async ValueTask<bool> StoreCreatesExclusivelyAsync(CancellationToken ct) =>
        store is IConditionalCreate conditional && await conditional.CreatesExclusivelyAsync(ct).ConfigureAwait(false);

    /// <summary>Always: exclusive by the store's own conditional create, or by claims.</summary>
    public ValueTask<bool> CreatesExclusivelyAsync(CancellationToken cancellationToken) => ValueTask.FromResult(true);

    public Task<bool> TryCreateAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        TryCreateAsync(key, content, null, cancellationToken);

    /// <param name="settle">The wait between a claim and the listing of the claims, when not <see cref="Settle"/>.</param>
    public async Task<bool> TryCreateAsync(string key, ReadOnlyMemory<byte> content, TimeSpan? settle, CancellationToken ct)
    {
        if (await StoreCreatesExclusivelyAsync(ct).ConfigureAwait(false))
        {
            return await ((IConditionalCreate)store).TryCreateAsync(key, content, ct).ConfigureAwait(false);
        }
        if (await store.TryReadAllBytesAsync(key, ct).ConfigureAwait(false) is not null) return false;
        var claims = key[..(key.LastIndexOf('/') + 1)] + StoreLayout.ClaimsFolder + "/";
        var mine = $"{claims}{clock.GetUtcNow().UtcTicks:x16}-{Guid.NewGuid():N}";
        await store.PutAsync(mine, content, ct).ConfigureAwait(false);
        await Task.Delay(settle ?? Settle, clock, ct).ConfigureAwait(false);
        string? first = null;
        var stale = (clock.GetUtcNow() - StaleClaim).UtcTicks;
        await foreach (var e in store.ListAsync(claims, recursive: false, ct).ConfigureAwait(false))
        {
            // A claim whose creator died before writing the record does not hold the name forever.
            if (e.IsPrefix) continue;
            if (e.Key.Length >= claims.Length + 16
                && long.TryParse(e.Key.AsSpan(claims.Length, 16), System.Globalization.NumberStyles.HexNumber, null, out var ticks) && ticks < stale) continue;
            if (first is null || string.CompareOrdinal(e.Key, first) < 0) first = e.Key;
        }
        if (first != mine || await store.TryReadAllBytesAsync(key, ct).ConfigureAwait(false) is not null)
        {
            await store.DeleteAsync(mine, CancellationToken.None).ConfigureAwait(false);
            return false;
        }
        await store.PutAsync(key, content, ct).ConfigureAwait(false);
        return true;
    }
}
