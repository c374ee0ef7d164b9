using System.Security.Cryptography;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The folders Start-GridRun makes its experiments work in: one new folder per run,
/// &lt;root&gt;/&lt;run&gt;.&lt;8 random hex digits&gt;, with plan.json and a folder per experiment (expN). A run
/// never starts in a folder an earlier run used: not one of the same name in another store, nor
/// one left by a removed run. Releases before 0.4.2 used &lt;root&gt;/&lt;run&gt; and never removed it.
/// </summary>
public static class WorkingFolders
{
    /// <summary>The plan Start-GridRun writes in each run's folder: the run, its store, its experiments.</summary>
    public const string PlanFile = "plan.json";

    /// <summary>Makes a run's folder under <paramref name="root"/> that did not exist before, and returns it.</summary>
    public static string CreateRunFolder(string root, string run)
    {
        GridNames.CheckRunName(run);
        Directory.CreateDirectory(root);
        for (var attempt = 0; ; attempt++)
        {
            var folder = Path.Combine(root, run + "." + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant());
            // mkdir itself says whether it made the folder: one that exists (however it came to) is never taken.
            if (NativeFiles.Supported)
            {
                if (NativeFiles.MakeDirectory(folder)) return folder;
            }
            else if (!Directory.Exists(folder))
            {
                Directory.CreateDirectory(folder);
                return folder;
            }
            if (attempt == 16) throw new IOException($"Could not make a new folder for run {run} under '{root}'.");
        }
    }

    /// <summary>Whether a folder under a work root is a run's folder as releases before 0.4.2 made it (named as the run alone).</summary>
    public static bool IsEarlierLayout(string folderName) => GridNames.IsValidRunName(folderName);

    /// <summary>The run a folder under a work root belongs to, by its name (either layout), or null.</summary>
    public static string? RunOf(string folderName)
    {
        var dot = folderName.IndexOf('.');
        var run = dot < 0 ? folderName : folderName[..dot];
        return GridNames.IsValidRunName(run) ? run : null;
    }

    /// <summary>The folders earlier releases left under <paramref name="root"/> (one readdir; nothing inside is read).</summary>
    public static List<string> EarlierLayoutFolders(string root)
    {
        var found = new List<string>();
        if (!Directory.Exists(root)) return found;
        foreach (var d in new DirectoryInfo(root).EnumerateDirectories())
        {
            if ((d.Attributes & FileAttributes.ReparsePoint) == 0 && IsEarlierLayout(d.Name) && File.Exists(Path.Combine(d.FullName, PlanFile))) found.Add(d.FullName);
        }
        return found;
    }

    /// <summary>
    /// Removes a folder and everything in it. Links in it are removed as links: nothing outside the
    /// folder is followed or touched. Returns null, or why it (or part of it) is still there.
    /// </summary>
    public static string? Remove(string folder)
    {
        try
        {
            var info = new DirectoryInfo(folder);
            if (!info.Exists) return null;
            if ((info.Attributes & FileAttributes.ReparsePoint) != 0) return "it is a link, not a folder";
            // .NET removes a link met inside as the link itself, never its target.
            info.Delete(recursive: true);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }

    /// <summary>The run and store a run folder's plan names, and whether it asked to keep every folder (-KeepWorkingDirectory), or null.</summary>
    public static (string Run, string Store, bool Keep)? ReadPlan(string folder)
    {
        try
        {
            var plan = Launch.RunPlan.Read(Path.Combine(folder, PlanFile));
            return GridNames.IsValidRunName(plan.Run) && !string.IsNullOrEmpty(plan.Store) ? (plan.Run, plan.Store, plan.KeepWorkingDirectory) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return null;
        }
    }
}
