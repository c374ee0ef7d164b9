using System.Text.Json;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// Which store a call uses, strongest first: the call's -Store, <c>$env:GRID_STORE</c>, the location saved
/// by Set-GridStore (in the user's config folder), then the default folder <c>~/.grid/store</c>.
/// </summary>
public static class StoreSettings
{
    public const string StoreVariable = "GRID_STORE";
    /// <summary>Overrides the folder that holds config.json (tests and portable set-ups use it).</summary>
    public const string ConfigHomeVariable = "GRID_CONFIG_HOME";

    private const string ConfigFileName = "config.json";

    public static string DefaultLocation =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".grid", "store");

    public static string ConfigFolder
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable(ConfigHomeVariable);
            if (!string.IsNullOrEmpty(overridden)) return overridden;
            var appData = Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify);
            if (string.IsNullOrEmpty(appData))
            {
                appData = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
            }
            return Path.Combine(appData, "GridArtifacts");
        }
    }

    public static string ConfigFile => Path.Combine(ConfigFolder, ConfigFileName);

    /// <summary>Where the store is and which setting chose it. Relative folder paths are returned as given.</summary>
    public static GridStoreInfo Resolve(string? parameter)
    {
        if (!string.IsNullOrWhiteSpace(parameter)) return Describe(parameter, GridStoreSource.Parameter);
        var env = Environment.GetEnvironmentVariable(StoreVariable);
        if (!string.IsNullOrWhiteSpace(env)) return Describe(env, GridStoreSource.Environment);
        var saved = ReadSavedLocation();
        if (!string.IsNullOrWhiteSpace(saved)) return Describe(saved, GridStoreSource.Config);
        return Describe(DefaultLocation, GridStoreSource.Default);
    }

    public static GridStoreInfo Describe(string location, GridStoreSource source) =>
        new(CheckLocation(location), IsS3(location) ? GridStoreKind.S3 : GridStoreKind.FileSystem, source);

    private static readonly System.Text.RegularExpressions.Regex UriLike = new("^(?<scheme>[A-Za-z][A-Za-z0-9+.-]+):", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>
    /// A location that starts like a URI but is not <c>s3://</c> (<c>s3:/bucket</c>, <c>s3:bucket</c>,
    /// <c>s3a://bucket</c>, <c>https://...</c>) is a typo, not a folder: refused, so artifacts never land
    /// in a local folder named after a bucket. A folder of such a name can be written <c>./s3:bucket</c>.
    /// </summary>
    public static string CheckLocation(string location)
    {
        if (!IsS3(location) && UriLike.Match(location) is { Success: true } m)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "InvalidStoreUri",
                $"The store '{location}' starts like a URI ('{m.Groups["scheme"].Value}:') but is not s3://bucket/prefix. Write an S3 store as s3://bucket/prefix, " +
                $"or a folder whose name holds a colon as ./{location}.", location);
        }
        return location;
    }

    public static bool IsS3(string location) => location.StartsWith("s3://", StringComparison.OrdinalIgnoreCase);

    public static string? ReadSavedLocation()
    {
        var file = ConfigFile;
        if (!File.Exists(file)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            return doc.RootElement.TryGetProperty("store", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        }
        catch (JsonException ex)
        {
            throw new GridException(GridErrorKind.DamagedRecord, "DamagedConfig",
                $"The settings file '{file}' is damaged ({ex.Message}). Run Set-GridStore to write it again, or delete it.", file, ex);
        }
    }

    /// <summary>Saves the location for later sessions; null removes the saved setting.</summary>
    public static void SaveLocation(string? location)
    {
        var file = ConfigFile;
        if (location is null)
        {
            if (File.Exists(file)) File.Delete(file);
            return;
        }
        Directory.CreateDirectory(ConfigFolder);
        var tmp = file + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["store"] = location }, RecordJsonContext.Default.DictionaryStringString));
        File.Move(tmp, file, overwrite: true);
    }

}
