using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Save-GridArtifact's planning in Core: where each artifact goes, which are refused before anything
/// moves (a file where another artifact needs a folder, a name that cannot be a local path), and a
/// destination that cannot take anything.
/// </summary>
public sealed class SavePlanTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private static GridArtifact Artifact(string path, string experiment = "exp0", long size = 10) =>
        new("my-run", experiment, path, "/store") { Size = size };

    [Fact]
    public void Each_artifact_goes_under_its_run_and_experiment()
    {
        var root = _temp.Sub("dest");
        var plan = SavePlan.For(root, new[] { Artifact("a.txt"), Artifact("logs/b.txt", "exp1", 5) });
        Assert.Empty(plan.Refused);
        Assert.Equal(new[] { Path.Combine(root, "my-run", "exp0", "a.txt"), Path.Combine(root, "my-run", "exp1", "logs", "b.txt") }, plan.Items.Select(i => i.LocalPath));
        Assert.All(plan.Items, i => Assert.Equal(root, i.Root));
        Assert.Equal(15, plan.Bytes);
    }

    [Fact]
    public void A_file_and_a_folder_of_one_name_the_folder_wins_whatever_the_order()
    {
        var root = _temp.Sub("dest");
        foreach (var order in new[] { new[] { "a", "a/b", "a/c/d", "x" }, new[] { "a/c/d", "x", "a/b", "a" } })
        {
            var plan = SavePlan.For(root, order.Select(p => Artifact(p)));
            Assert.Equal(new[] { "a/b", "a/c/d", "x" }, plan.Items.Select(i => i.Artifact.Path).Order(StringComparer.Ordinal));
            var conflict = Assert.Single(plan.Refused);
            Assert.Equal(("PathConflict", GridErrorKind.AlreadyExists), (conflict.ErrorId, conflict.Kind));
            Assert.Equal("a", Assert.IsType<GridArtifact>(conflict.Target).Path);
        }
        // The same name in another experiment is another folder: no conflict.
        Assert.Empty(SavePlan.For(root, new[] { Artifact("a"), Artifact("a/b", "exp1") }).Refused);
    }

    [Fact]
    public void A_name_that_would_leave_the_destination_is_refused_and_the_rest_planned()
    {
        var plan = SavePlan.For(_temp.Sub("dest"), new[] { Artifact("../../escape.txt"), Artifact("ok.txt") });
        Assert.Equal("ok.txt", Assert.Single(plan.Items).Artifact.Path);
        Assert.Single(plan.Refused);
    }

    [Fact]
    public void A_destination_below_a_file_is_refused_before_anything_is_made()
    {
        var file = _temp.WriteFile("blocker", new byte[] { 1 });
        var plan = SavePlan.For(Path.Combine(file, "inner", "dest"), new[] { Artifact("a.txt") });
        var ex = Assert.Throws<GridException>(plan.CheckDestination);
        Assert.Equal("DestinationNotFolder", ex.ErrorId);
        Assert.False(Directory.Exists(Path.Combine(file, "inner")));

        var fine = SavePlan.For(_temp.Sub("new", "dest"), new[] { Artifact("a.txt") });
        fine.CheckDestination();
        Assert.True(Directory.Exists(_temp.Sub("new", "dest")));
        Assert.Empty(Directory.GetFiles(_temp.Sub("new", "dest")));
    }

    [Fact]
    public void Only_a_full_or_read_only_disk_stops_the_whole_save()
    {
        var full = new IOException("No space left on device", 28);
        var readOnly = new IOException("Read-only file system", 30);
        var other = new IOException("Permission denied", 13);
        Assert.True(SavePlan.IsDestinationWide(new GridException(GridErrorKind.WriteFailed, "DestinationDiskFull", "full", null, full)));
        Assert.True(SavePlan.IsDestinationWide(new GridException(GridErrorKind.WriteFailed, "SaveFailed", "ro", null, readOnly)));
        Assert.False(SavePlan.IsDestinationWide(new GridException(GridErrorKind.WriteFailed, "SaveFailed", "denied", null, other)));
        Assert.False(SavePlan.IsDestinationWide(new GridException(GridErrorKind.IntegrityFailure, "HashMismatch", "bad")));
    }
}
