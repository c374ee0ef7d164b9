using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace GridArtifacts;

/// <summary>
/// Keeps the module's own dependencies out of PowerShell's default load context: the cmdlet assembly
/// loads in the default context, and GridArtifacts.Core with everything it depends on loads from the
/// module's <c>deps</c> folder into a context of its own, so another module's copies of the same
/// libraries (in other versions) break neither module.
/// </summary>
public sealed class ModuleInit : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    internal const string DependencyFolder = "deps";
    internal const string EngineAssembly = "GridArtifacts.Core";

    private static readonly string DepsPath =
        Path.Combine(Path.GetDirectoryName(typeof(ModuleInit).Assembly.Location)!, DependencyFolder);

    internal static readonly GridLoadContext Context = new(DepsPath);

    public void OnImport() => AssemblyLoadContext.Default.Resolving += ResolveEngine;

    public void OnRemove(PSModuleInfo psModuleInfo) => AssemblyLoadContext.Default.Resolving -= ResolveEngine;

    private static Assembly? ResolveEngine(AssemblyLoadContext defaultContext, AssemblyName name) =>
        name.Name == EngineAssembly && File.Exists(Path.Combine(DepsPath, EngineAssembly + ".dll"))
            ? Context.LoadFromAssemblyName(name)
            : null;
}

/// <summary>Loads the engine and its dependencies from the module's deps folder; anything else comes from the default context.</summary>
internal sealed class GridLoadContext : AssemblyLoadContext
{
    private readonly string _folder;

    public GridLoadContext(string folder) : base("GridArtifacts", isCollectible: false) => _folder = folder;

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        var candidate = Path.Combine(_folder, assemblyName.Name + ".dll");
        return File.Exists(candidate) ? LoadFromAssemblyPath(candidate) : null;
    }
}
