using System.Diagnostics;
using GridArtifacts.Core.Capture;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The script's process tree, as a signal's stop collects it to kill what is left: only processes
/// below the script itself, never below another process that was given its number later.
/// </summary>
public sealed class ScriptProcessesTests
{
    [Fact]
    public async Task Descendants_are_collected_below_the_script_only_while_it_is_the_process_identified()
    {
        using var script = Process.Start(new ProcessStartInfo("bash", new[] { "-c", "sleep 30 & sleep 30 & wait" }) { RedirectStandardOutput = true })!;
        try
        {
            var root = ScriptProcesses.Identify(script.Id);
            Assert.NotNull(root);
            var tree = new Dictionary<int, ulong>();
            for (var i = 0; i < 50 && tree.Count < 2; i++)
            {
                await Task.Delay(100);
                ScriptProcesses.AddDescendants(root, tree);
            }
            Assert.Equal(2, tree.Count);

            // The same number with another start time: the process the script was has gone, and its
            // number's children are not the script's. Nothing is collected.
            var other = new Dictionary<int, ulong>();
            ScriptProcesses.AddDescendants((script.Id, root!.Value.Start + 1), other);
            Assert.Empty(other);
            ScriptProcesses.AddDescendants(null, other);
            Assert.Empty(other);
        }
        finally
        {
            script.Kill(entireProcessTree: true);
            await script.WaitForExitAsync();
        }
    }
}
