using System.Management.Automation;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Errors: every kind has its own category in the one map that makes ErrorRecords, and what code
/// acts on (a missing object) is a typed cause, not an error id's text.
/// </summary>
public sealed class ErrorMapTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Every_kind_maps_to_a_category_of_its_own_and_the_record_keeps_id_and_target()
    {
        foreach (var kind in Enum.GetValues<GridErrorKind>())
        {
            var record = GridCmdlet.ToErrorRecord(new GridException(kind, "SomeId", "message", "target"));
            Assert.NotEqual(ErrorCategory.NotSpecified, record.CategoryInfo.Category);
            Assert.Equal("SomeId", record.FullyQualifiedErrorId);
            Assert.Equal("target", record.TargetObject);
        }
        Assert.Equal(ErrorCategory.InvalidResult, GridCmdlet.ToErrorRecord(new GridException(GridErrorKind.Failed, "ExperimentFailed", "m")).CategoryInfo.Category);
        Assert.Equal(ErrorCategory.InvalidOperation, GridCmdlet.ToErrorRecord(new GridException(GridErrorKind.InvalidOperation, "ConfirmationNotPossible", "m")).CategoryInfo.Category);
        Assert.Equal(ErrorCategory.ResourceUnavailable, GridCmdlet.ToErrorRecord(new GridException(GridErrorKind.ResourceUnavailable, "ServerStartFailed", "m")).CategoryInfo.Category);
    }

    [Fact]
    public async Task A_folder_store_says_a_missing_object_by_its_cause()
    {
        var store = new FileSystemStore(_temp.Sub("store"));
        var ex = await Assert.ThrowsAsync<GridException>(() => store.OpenReadAsync("runs/none/run.json", default));
        Assert.Equal(GridErrorCause.ObjectMissing, ex.Cause);
        Assert.Equal(GridErrorCause.None, new GridException(GridErrorKind.NotFound, "ObjectNotFound", "same id, no cause").Cause);
    }
}
