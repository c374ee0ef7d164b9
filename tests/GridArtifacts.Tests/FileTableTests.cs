using FsCheck;
using FsCheck.Fluent;
using GridArtifacts.Core.Capture;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The agent's file table against a dictionary: any paths, found again, spelled back exactly.</summary>
public sealed class FileTableTests
{
    [Fact]
    public void Paths_are_found_again_and_spelled_back_exactly()
    {
        var character = Gen.OneOf(Gen.Elements("a", "Z", "0", "/", ".", "-", " ", "é", "e\u0301", "夜", "🚀", "\u200d"), Gen.Choose(0x20, 0x7e).Select(c => ((char)c).ToString()));
        var path = Gen.Choose(1, 40).SelectMany(n => Gen.ArrayOf(character, n)).Select(string.Concat);
        Prop.ForAll(Gen.ListOf(path).ToArbitrary(), paths =>
        {
            var table = new FileTable(TimeProvider.System);
            var model = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var p in paths)
            {
                var i = table.FindOrAdd(p, 0, out var added);
                Assert.Equal(!model.ContainsKey(p), added);
                if (added) model[p] = i;
                Assert.Equal(model[p], i);
            }
            Assert.Equal(model.Count, table.Count);
            foreach (var (p, i) in model)
            {
                Assert.Equal(i, table.Find(p));
                Assert.Equal(p, table.PathOf(i));
            }
            Assert.Equal(-1, table.Find("never-added/" + Guid.NewGuid()));
        }).QuickCheckThrowOnFailure();
    }
}

/// <summary>
/// The file table's memory, measured alone: the managed heap is the process's, and a test running
/// beside this one that holds a few dozen megabytes while it is measured (a transfer's buffers, a
/// large file read whole) would be counted as the table's. CI once measured 149 bytes a file that way.
/// </summary>
[Collection(TimedAlone.Name)]
public sealed class FileTableMemoryTests
{
    [Fact]
    public void A_million_paths_fit_in_about_a_hundred_bytes_each()
    {
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var table = new FileTable(TimeProvider.System);
        for (var i = 0; i < 1_000_000; i++) table.FindOrAdd($"round-{i / 50_000:D2}/dir-{i / 1000 % 50:D2}/file-{i:D7}.bin", 0, out _);
        var bytes = GC.GetTotalMemory(forceFullCollection: true) - before;
        Assert.True(bytes / 1_000_000.0 <= 100, $"{bytes / 1_000_000.0:0.0} bytes a file");
        Assert.Equal(123_456, table.Find("round-02/dir-23/file-0123456.bin"));
        GC.KeepAlive(table);
    }
}
