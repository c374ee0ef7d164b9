using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The transfer engine's memory pool: the cap, resizing in place, waiting in order, cancellation.</summary>
public class MemoryPoolTests : IDisposable
{
    private const int Block = 4096;
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Many_concurrent_rents_never_hold_more_than_the_cap_and_never_share_a_block()
    {
        var pool = new MemoryPool(8 * Block, Block);
        var holding = 0;
        var most = 0;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(id => Task.Run(async () =>
        {
            var random = new Random(id);
            for (var round = 0; round < 20; round++)
            {
                using var lease = await pool.RentAsync(random.Next(1, 6), default);
                var now = Interlocked.Add(ref holding, lease.Count);
                InterlockedMax(ref most, now);
                var blocks = new List<MemoryBlock>();
                for (var i = 0; i < lease.Count; i++) blocks.Add(await lease.TakeAsync(default));
                foreach (var b in blocks) Array.Fill(b.Array, (byte)id);
                await Task.Delay(random.Next(0, 2));
                // No other holder wrote into these blocks meanwhile.
                foreach (var b in blocks) Assert.Equal(-1, b.Array.AsSpan().IndexOfAnyExcept((byte)id));
                foreach (var b in blocks) b.Dispose();
                Interlocked.Add(ref holding, -lease.Count);
            }
        })));
        Assert.InRange(pool.HighWaterBytes, 2 * Block, 8 * Block);
        Assert.InRange(most, 2, 8);
        Assert.Equal(0, pool.RentedBytes);
        Assert.InRange(pool.AllocatedBytes, Block, 8 * Block); // blocks are kept for the next rent, never more than the cap
    }

    [Fact]
    public async Task A_rent_for_more_than_the_cap_gets_the_cap_and_a_worker_waits_for_a_block_of_its_lease()
    {
        var pool = new MemoryPool(3 * Block, Block);
        using var lease = await pool.RentAsync(10, default);
        Assert.Equal(3, lease.Count);
        Assert.Equal(3 * Block, pool.RentedBytes);

        var taken = new[] { await lease.TakeAsync(default), await lease.TakeAsync(default), await lease.TakeAsync(default) };
        var fourth = lease.TakeAsync(default).AsTask();
        await Task.Delay(50);
        Assert.False(fourth.IsCompleted); // the lease's three blocks are out
        var back = taken[1].Array;
        taken[1].Dispose();
        taken[1].Dispose(); // given back once only
        using (var block = await fourth.WaitAsync(TimeSpan.FromSeconds(5))) Assert.Same(back, block.Array);
        var fifth = lease.TakeAsync(default).AsTask();
        Assert.True(fifth.IsCompletedSuccessfully); // the block came back to the lease again
        Assert.Equal(3 * Block, pool.RentedBytes); // blocks move inside the lease, not through the pool
    }

    [Fact]
    public async Task Rents_are_granted_whole_and_in_order_so_a_large_one_is_not_passed_by_small_ones()
    {
        var pool = new MemoryPool(4 * Block, Block);
        var held = await pool.RentAsync(3, default);
        var large = pool.RentAsync(4, default).AsTask();
        var small = pool.RentAsync(1, default).AsTask(); // it fits, but waits behind the large one
        await Task.Delay(50);
        Assert.False(large.IsCompleted);
        Assert.False(small.IsCompleted);
        Assert.Equal(3 * Block, pool.RentedBytes); // nothing taken in part
        held.Dispose();
        using (var l = await large.WaitAsync(TimeSpan.FromSeconds(5)))
        {
            Assert.Equal(4, l.Count);
            await Task.Delay(50);
            Assert.False(small.IsCompleted);
        }
        using var s = await small.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(Block, pool.RentedBytes);
        Assert.Equal(4 * Block, pool.HighWaterBytes);
    }

    [Fact]
    public async Task A_lower_cap_makes_new_rents_wait_until_enough_is_back_and_live_leases_return_to_the_same_pool()
    {
        var pool = new MemoryPool(8 * Block, Block);
        var live = await pool.RentAsync(6, default);
        pool.Capacity = 4 * Block;
        Assert.Equal(4 * Block, pool.Capacity);
        var waiting = pool.RentAsync(2, default).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted); // 6 out under a cap of 4: nothing more until they are back
        Assert.Equal(1, pool.Waiting);
        live.Dispose();
        using var granted = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(2, granted.Count);
        Assert.Equal(2 * Block, pool.RentedBytes);
        Assert.InRange(pool.AllocatedBytes, 2 * Block, 4 * Block); // blocks over the lowered cap were let go
        live.Dispose(); // a second dispose gives nothing back again
        Assert.Equal(2 * Block, pool.RentedBytes);
        using var rest = await pool.RentAsync(2, default).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(4 * Block, pool.RentedBytes);
    }

    [Fact]
    public async Task A_higher_cap_lets_waiting_rents_go_at_once()
    {
        var pool = new MemoryPool(2 * Block, Block);
        using var live = await pool.RentAsync(2, default);
        var waiting = pool.RentAsync(3, default).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        pool.Capacity = 5 * Block;
        using var granted = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(3, granted.Count);
        Assert.Equal(5 * Block, pool.HighWaterBytes);
    }

    [Fact]
    public async Task A_rent_cancelled_while_it_waits_takes_nothing_and_nothing_is_returned_twice()
    {
        var pool = new MemoryPool(2 * Block, Block);
        var held = await pool.RentAsync(2, default);
        using (var cts = new CancellationTokenSource())
        {
            var waiting = pool.RentAsync(1, cts.Token).AsTask();
            await Task.Delay(20);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        }
        Assert.Equal(0, pool.Waiting);
        Assert.Equal(2 * Block, pool.RentedBytes);
        held.Dispose();
        Assert.Equal(0, pool.RentedBytes);

        // Cancellations racing the grants: whichever wins, the count comes back to zero, never below.
        for (var i = 0; i < 500; i++)
        {
            var holder = await pool.RentAsync(2, default);
            using var cts = new CancellationTokenSource();
            var rent = pool.RentAsync(2, cts.Token).AsTask();
            var release = Task.Run(holder.Dispose);
            var cancel = Task.Run(cts.Cancel);
            await Task.WhenAll(release, cancel);
            try { (await rent).Dispose(); }
            catch (OperationCanceledException) { }
            Assert.Equal(0, pool.RentedBytes);
        }
        using var all = await pool.RentAsync(2, default).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(2 * Block, pool.RentedBytes);
        Assert.Equal(0, pool.Waiting);
    }

    [Fact]
    public void Free_blocks_no_rent_needed_for_a_period_are_let_go()
    {
        var clock = new ManualClock();
        var pool = new MemoryPool(4 * Block, Block, clock);
        pool.RentAsync(3, default).AsTask().Result.Dispose();
        Assert.Equal(3 * Block, pool.AllocatedBytes);
        pool.Trim(); // the blocks were rented since the last trim: kept
        Assert.Equal(3 * Block, pool.AllocatedBytes);
        pool.RentAsync(1, default).AsTask().Result.Dispose();
        pool.Trim(); // two were not needed in this period
        Assert.Equal(Block, pool.AllocatedBytes);
        pool.Trim();
        Assert.Equal(0, pool.AllocatedBytes);
    }

    [Fact]
    public void Configure_changes_the_cap_of_the_one_pool()
    {
        var engine = new TransferEngine(new TransferOptions { MemoryBudget = 20L << 20 });
        var pool = engine.Memory;
        Assert.Equal(20L << 20, pool.Capacity);
        engine.Configure(engine.Options with { MemoryBudget = 3L << 20 });
        Assert.Same(pool, engine.Memory);
        Assert.Equal(3L << 20, pool.Capacity);
    }

    /// <summary>
    /// Four ranged downloads at once, each wanting more blocks than the cap, through one request at a
    /// time: each gets the cap in turn and none holds memory while another holds the request it waits for.
    /// </summary>
    [Fact]
    public async Task Downloads_that_each_want_more_than_the_cap_through_one_request_at_a_time_all_finish()
    {
        var engine = new TransferEngine(new TransferOptions
        {
            MemoryBudget = 2L << 20, MaxConcurrency = 1, RangedThreshold = 1L << 20, PartSize = 512 << 10, PartsPerFile = 4,
        });
        var catalog = new GridCatalog(new FileSystemStore(_temp.Sub("store"))) { Engine = engine };
        var files = Enumerable.Range(0, 4).Select(i => ($"big{i}.bin", TestBytes.Random(3_000_000 + i, 40 + i))).ToList();
        await MemoryRoundTrip.RunAsync(catalog, files, _temp.Sub("dest")).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.InRange(engine.Memory.HighWaterBytes, 1L << 20, 2L << 20);
    }

    [Fact]
    public async Task Files_round_trip_through_a_folder_store_byte_exact_under_a_small_cap()
    {
        var engine = MemoryRoundTrip.SmallCapEngine();
        var catalog = new GridCatalog(new FileSystemStore(_temp.Sub("store"))) { Engine = engine };
        await MemoryRoundTrip.RunAsync(catalog, MemoryRoundTrip.Files(), _temp.Sub("dest"));
        Assert.InRange(engine.Memory.HighWaterBytes, 2L << 20, MemoryRoundTrip.Cap);
        Assert.Equal(0, engine.Memory.RentedBytes);
        Assert.InRange(engine.Memory.AllocatedBytes, 1L << 20, MemoryRoundTrip.Cap);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (var seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, seen) == seen) return;
        }
    }
}

[Collection(S3SecondLane.Name)]
public sealed class MemoryPoolS3Tests(S3ServerFixture s3) : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Files_round_trip_through_s3_byte_exact_under_a_small_cap_in_parts_and_ranges()
    {
        var engine = MemoryRoundTrip.SmallCapEngine();
        var store = new S3Store(s3.StoreUri(s3.NewBucket(), "mem/" + Guid.NewGuid().ToString("N")));
        var catalog = new GridCatalog(store) { Engine = engine };
        await MemoryRoundTrip.RunAsync(catalog, MemoryRoundTrip.Files(), _temp.Sub("dest"));
        Assert.InRange(engine.Memory.HighWaterBytes, 2L << 20, MemoryRoundTrip.Cap);
        Assert.Equal(0, engine.Memory.RentedBytes);
        Assert.InRange(engine.Memory.AllocatedBytes, 1L << 20, MemoryRoundTrip.Cap);
    }
}

/// <summary>Uploads files through a catalog's engine, many at once, then saves them all back and compares every byte.</summary>
internal static class MemoryRoundTrip
{
    public const long Cap = 8L << 20;

    /// <summary>8 MiB for everything; files over 6 MiB go up in parts (where the store takes parts) and come down in 1 MiB ranges, 8 at a time.</summary>
    public static TransferEngine SmallCapEngine() => new(new TransferOptions
    {
        MemoryBudget = Cap, RangedThreshold = 6L << 20, PartSize = 1L << 20, PartsPerFile = 8,
    });

    public static List<(string Path, byte[] Data)> Files()
    {
        var files = new List<(string, byte[])>
        {
            ("ckpt/a.pt", TestBytes.Random(13 << 20, 1)),
            ("ckpt/b.pt", TestBytes.Random((11 << 20) + 12_345, 2)),
            ("ckpt/c.pt", TestBytes.Random((7 << 20) - 1, 3)),
            ("empty.txt", []),
        };
        for (var i = 0; i < 30; i++) files.Add(($"logs/{i}.txt", TestBytes.Random(1 + i * 37_001, 100 + i)));
        return files;
    }

    public static async Task RunAsync(GridCatalog catalog, IReadOnlyList<(string Path, byte[] Data)> files, string destination)
    {
        using var source = new TempDir();
        var entries = new ManifestEntry[files.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, files.Count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var (path, data) = files[i];
            entries[i] = await catalog.Artifacts.PutArtifactFileAsync("run", "exp0", path, source.WriteFile(path, data), ct);
        });
        await catalog.Manifests.WriteManifestAsync(new ManifestRecord { Run = "run", Experiment = "exp0", Artifacts = entries.ToList() }, default);
        await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord { Run = "run", Experiment = "exp0", Status = GridStatus.Succeeded }, default);
        var artifacts = (await catalog.Artifacts.GetArtifactsAsync("run", "exp0", default)).Items;
        Assert.Equal(files.Count, artifacts.Count);

        var items = artifacts.Select(a => new SaveItem(a, Path.Combine(destination, a.Path)) { Root = destination }).ToList();
        var errors = new List<GridException>();
        var saved = 0;
        await catalog.Engine.DownloadAsync(items, _ => catalog, force: false, throttleLimit: 16, new TransferProgress(items.Count, items.Sum(i => i.Artifact.Size)),
            _ => Interlocked.Increment(ref saved), e => { lock (errors) errors.Add(e); }, default);
        Assert.Empty(errors);
        Assert.Equal(files.Count, saved);
        foreach (var (path, data) in files) Assert.Equal(TestBytes.Sha256(data), TestBytes.Sha256(Path.Combine(destination, path)));
    }
}
