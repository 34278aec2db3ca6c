namespace Orleans.LIFL.Persistence;

/// <summary>
/// A grain's durable state. Read before OnActivateAsync; written only when the grain calls
/// <see cref="WriteStateAsync"/>. Writes use optimistic concurrency on <see cref="Etag"/>.
/// </summary>
public interface IPersistentState<TState>
{
    TState State { get; set; }

    /// <summary>The version of the stored record this object was read from or last wrote; null when none exists.</summary>
    string? Etag { get; }

    bool RecordExists { get; }

    Task ReadStateAsync();

    /// <summary>Stores <see cref="State"/>. Throws <see cref="InconsistentStateException"/> when the stored record changed
    /// since it was read (another activation wrote it), leaving the stored record as it was.</summary>
    Task WriteStateAsync();

    Task ClearStateAsync();
}

/// <summary>Marks a grain constructor parameter of type <see cref="IPersistentState{TState}"/>.</summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class PersistentStateAttribute : Attribute
{
    public PersistentStateAttribute(string stateName, string? storageName = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(stateName);
        StateName = stateName;
        StorageName = storageName;
    }

    public string StateName { get; }

    /// <summary>The registered storage provider; null for the one named "Default".</summary>
    public string? StorageName { get; }
}

/// <summary>The record a storage provider reads and writes.</summary>
public interface IGrainState<TState>
{
    TState State { get; set; }

    string? ETag { get; set; }

    bool RecordExists { get; set; }
}

/// <summary>A storage provider for grain state.</summary>
public interface IGrainStorage
{
    Task ReadStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState);

    Task WriteStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState);

    Task ClearStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState);
}

/// <summary>A write found the stored record changed since it was read.</summary>
public sealed class InconsistentStateException : LiflException
{
    public InconsistentStateException(string message) : base(message)
    {
    }

    public InconsistentStateException(string message, string? storedEtag, string? currentEtag) : base(message)
    {
        StoredEtag = storedEtag;
        CurrentEtag = currentEtag;
    }

    /// <summary>The version in storage.</summary>
    public string? StoredEtag { get; }

    /// <summary>The version the writer believed it had.</summary>
    public string? CurrentEtag { get; }
}
