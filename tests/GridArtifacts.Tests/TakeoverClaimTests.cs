using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Claims of a record that exists (a queued experiment, a Lost one): on a store that creates
/// exclusively they are decided by creating one claim key, with no settle time; elsewhere by the
/// settle and a read back. Either way of two claimants at one moment exactly one goes on.
/// </summary>
[Collection(S3Collection.Name)]
public sealed class TakeoverClaimTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly S3ServerFixture _s3;

    public TakeoverClaimTests(S3ServerFixture s3) => _s3 = s3;

    public void Dispose() => _temp.Dispose();

    private IObjectStore FolderStore() => new FileSystemStore(_temp.Sub("store-" + Guid.NewGuid().ToString("N")));

    /// <summary>S3 that creates exclusively: the server itself where it honours If-None-Match (RADOS Gateway), else s3rver behind a proxy that answers the condition as AWS does.</summary>
    private async Task<(IObjectStore Store, IDisposable? Proxy)> ConditionalS3Store()
    {
        var bucket = _s3.NewBucket();
        if (await new S3Store(_s3.StoreUri(bucket, "probe")).CreatesExclusivelyAsync(default)) return (new S3Store(_s3.StoreUri(bucket, "claims")), null);
        var proxy = new FaultProxy(_s3.Endpoint) { HonourIfNoneMatch = true };
        var location = _s3.StoreUri(bucket, "claims").Replace(Uri.EscapeDataString(_s3.Endpoint), Uri.EscapeDataString(proxy.Endpoint));
        return (new S3Store(location), proxy);
    }

    private static async Task Queue(GridCatalog catalog, string run, int experiments)
    {
        var now = catalog.Clock.GetUtcNow();
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = run, Created = now }, default);
        await catalog.Writer.QueueExperimentsAsync(run, Enumerable.Range(0, experiments).Select(_ => (new Dictionary<string, string>(), "train")).ToList(), now, default);
    }

    private static Task<ExperimentRecord> Claim(GridCatalog catalog, string run, string agent) =>
        catalog.Claims.ClaimExperimentAsync(run, "exp0", r =>
        {
            r!.Status = GridStatus.Running;
            r.Heartbeat = r.Started = catalog.Clock.GetUtcNow();
            r.Agent = agent;
            return r;
        }, takeQueued: true, mustExist: true, default);

    [Fact]
    public async Task A_claim_of_a_queued_experiment_on_a_store_that_creates_exclusively_does_not_wait_the_settle()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var catalog = new GridCatalog(FolderStore(), clock: clock);
        await Queue(catalog, "fast", 1);
        // The clock never moves: a claim that waited its settle would never end.
        var claimed = await Claim(catalog, "fast", "agent-a").WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(("agent-a", GridStatus.Running), (claimed.Agent, claimed.Status));
        var stored = await catalog.Runs.GetExperimentAsync("fast", "exp0", default);
        Assert.Equal(GridStatus.Running, stored.Status);
        Assert.Equal(clock.GetUtcNow(), stored.Heartbeat);

        // The same claim where the store cannot create exclusively waits the settle on that clock.
        var plainStore = new PlainStore(FolderStore());
        await Queue(new GridCatalog(plainStore) { ClaimSettle = TimeSpan.FromMilliseconds(50) }, "settled", 1); // queued on the real clock
        var plain = new GridCatalog(plainStore, clock: clock);
        var waiting = Claim(plain, "settled", "agent-b");
        await Task.Delay(300);
        Assert.False(waiting.IsCompleted);
        clock.Advance(plain.ClaimSettle);
        Assert.Equal("agent-b", (await waiting.WaitAsync(TimeSpan.FromSeconds(30))).Agent);
    }

    [Theory]
    [InlineData("folder")]
    [InlineData("folder without conditional create")]
    [InlineData("s3 with conditional create")]
    public async Task Two_agents_claiming_one_queued_experiment_at_once_end_with_exactly_one_running_it(string kind)
    {
        IDisposable? proxy = null;
        IObjectStore store;
        if (kind.StartsWith("s3", StringComparison.Ordinal)) (store, proxy) = await ConditionalS3Store();
        else store = kind == "folder" ? FolderStore() : new PlainStore(FolderStore());
        using var _ = proxy;
        var catalog = new GridCatalog(store) { ClaimSettle = TimeSpan.FromMilliseconds(300) };
        Assert.Equal(kind != "folder without conditional create", store is IConditionalCreate c && await c.CreatesExclusivelyAsync(default));
        const int rounds = 4;
        await Queue(catalog, "contested", rounds);
        for (var round = 0; round < rounds; round++)
        {
            var exp = GridNames.ExperimentName(round);
            var works = new[] { _temp.Sub($"a{round}"), _temp.Sub($"b{round}") };
            using var start = new ManualResetEventSlim();
            var runs = works.Select(work => Task.Run(async () =>
            {
                var agent = new CaptureAgent(catalog, "contested", exp, new CaptureOptions
                {
                    FileName = "bash", Arguments = new[] { "-c", "echo ran > ran.txt" }, WorkingDirectory = work, Queued = true, ClaimSettle = TimeSpan.FromMilliseconds(300),
                });
                start.Wait();
                try { return await agent.RunAsync(default) == 0 ? "ran" : "failed"; }
                catch (GridException ex) { return ex.ErrorId; }
            })).ToArray();
            start.Set();
            var outcomes = await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(1, outcomes.Count(o => o == "ran"));
            Assert.All(outcomes.Where(o => o != "ran"), o => Assert.Contains(o, new[] { "ExperimentAlreadyRunning", "ExperimentExists" }));
            Assert.Equal(1, works.Count(w => File.Exists(Path.Combine(w, "ran.txt"))));
            Assert.Equal(GridStatus.Succeeded, (await catalog.Runs.GetExperimentAsync("contested", exp, default)).Status);
        }
    }

    [Theory]
    [InlineData("folder")]
    [InlineData("folder without conditional create")]
    [InlineData("s3 with conditional create")]
    public async Task Of_two_writers_taking_over_one_Lost_experiment_at_once_exactly_one_holds_it(string kind)
    {
        IDisposable? proxy = null;
        IObjectStore store;
        if (kind.StartsWith("s3", StringComparison.Ordinal)) (store, proxy) = await ConditionalS3Store();
        else store = kind == "folder" ? FolderStore() : new PlainStore(FolderStore());
        using var _ = proxy;
        var catalog = new GridCatalog(store, lostAfter: TimeSpan.FromMinutes(2)) { ClaimSettle = TimeSpan.FromMilliseconds(300) };
        var old = DateTimeOffset.UtcNow.AddHours(-1);
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "lost", Created = old }, default);
        for (var round = 0; round < 3; round++)
        {
            // A Lost record (its agent's heartbeat an hour old), then two takeovers at one moment.
            var exp = GridNames.ExperimentName(round);
            await catalog.Writer.WriteExperimentRecordAsync(new ExperimentRecord
            {
                Run = "lost", Experiment = exp, Status = GridStatus.Running, Created = old, Started = old, Heartbeat = old, Agent = "agent/dead/1/0",
            }, default);
            Assert.Equal(GridStatus.Lost, (await catalog.Runs.GetExperimentAsync("lost", exp, default)).Status);
            using var start = new ManualResetEventSlim();
            var takers = new[] { "agent/x/1/1", "agent/y/2/2" }.Select(agent => Task.Run(async () =>
            {
                start.Wait();
                try
                {
                    await catalog.Claims.ClaimExperimentAsync("lost", exp, r =>
                    {
                        r!.Heartbeat = DateTimeOffset.UtcNow;
                        r.Agent = agent;
                        return r;
                    }, takeQueued: false, mustExist: true, default);
                    return agent;
                }
                catch (GridException ex) when (ex.ErrorId == "ExperimentAlreadyRunning") { return null; }
            })).ToArray();
            start.Set();
            var held = (await Task.WhenAll(takers).WaitAsync(TimeSpan.FromSeconds(60))).Where(a => a is not null).ToList();
            Assert.Single(held);
            Assert.Equal(held[0], (await catalog.Runs.ReadExperimentRecordAsync("lost", exp, default))!.Agent);
        }
    }
}

/// <summary>A real store without its conditional create: exclusive creation falls back to claims and a settle.</summary>
internal sealed class PlainStore(IObjectStore inner) : DelegatingStore(inner);
