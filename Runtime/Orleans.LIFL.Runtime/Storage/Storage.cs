using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Storage;

/// <summary>What an activation reads before OnActivateAsync.</summary>
internal interface IPersistentStateLoader
{
    Task ReadStateAsync();
}

/// <summary>Finds the named storage providers a grain's [PersistentState] parameters ask for.</summary>
internal sealed class GrainStorageResolver(IServiceProvider services)
{
    public const string DefaultName = "Default";

    public PersistentState<TState> CreateState<TState>(GrainId grainId, string stateName, string? storageName)
    {
        var name = storageName ?? DefaultName;
        var storage = services.GetKeyedService<IGrainStorage>(name)
            ?? throw new InvalidOperationException(
                $"Grain {grainId} asks for state '{stateName}' in storage '{name}', which is not registered; add it with AddMemoryGrainStorage(\"{name}\").");
        return new PersistentState<TState>(stateName, grainId, storage);
    }
}

/// <summary>The <see cref="IPersistentState{TState}"/> handed to grains.</summary>
internal sealed class PersistentState<TState> : IPersistentState<TState>, IGrainState<TState>, IPersistentStateLoader
{
    private readonly string _stateName;
    private readonly GrainId _grainId;
    private readonly IGrainStorage _storage;

    public PersistentState(string stateName, GrainId grainId, IGrainStorage storage)
    {
        _stateName = stateName;
        _grainId = grainId;
        _storage = storage;
        State = CreateDefault();
    }

    public TState State { get; set; }

    public string? Etag => ETag;

    public string? ETag { get; set; }

    public bool RecordExists { get; set; }

    public Task ReadStateAsync() => _storage.ReadStateAsync(_stateName, _grainId, this);

    public Task WriteStateAsync() => _storage.WriteStateAsync(_stateName, _grainId, this);

    public async Task ClearStateAsync()
    {
        await _storage.ClearStateAsync(_stateName, _grainId, this);
        State = CreateDefault();
    }

    internal static TState CreateDefault()
    {
        if (typeof(TState).IsValueType || typeof(TState) == typeof(string))
        {
            return default!;
        }

        return typeof(TState).GetConstructor(Type.EmptyTypes) is not null ? Activator.CreateInstance<TState>() : default!;
    }
}

/// <summary>Records kept by memory storage providers; shared by the silos of one process.</summary>
internal sealed class MemoryStorageBackend
{
    private readonly ConcurrentDictionary<(string Provider, string State, GrainId Grain), (object? Value, long Version)> _records = new();

    public bool TryRead(string provider, string state, GrainId grain, out object? value, out long version)
    {
        if (_records.TryGetValue((provider, state, grain), out var record))
        {
            (value, version) = record;
            return true;
        }

        value = null;
        version = 0;
        return false;
    }

    /// <summary>Writes if the stored version is <paramref name="expected"/> (0: no record); returns the stored version otherwise.</summary>
    public bool TryWrite(string provider, string state, GrainId grain, object? value, long expected, out long stored)
    {
        var key = (provider, state, grain);
        while (true)
        {
            if (_records.TryGetValue(key, out var current))
            {
                if (current.Version != expected)
                {
                    stored = current.Version;
                    return false;
                }

                if (_records.TryUpdate(key, (value, expected + 1), current))
                {
                    stored = expected + 1;
                    return true;
                }
            }
            else
            {
                if (expected != 0)
                {
                    stored = 0;
                    return false;
                }

                if (_records.TryAdd(key, (value, 1)))
                {
                    stored = 1;
                    return true;
                }
            }
        }
    }

    public bool TryClear(string provider, string state, GrainId grain, long expected, out long stored)
    {
        var key = (provider, state, grain);
        if (!_records.TryGetValue(key, out var current))
        {
            stored = 0;
            return expected == 0;
        }

        stored = current.Version;
        return current.Version == expected && _records.TryRemove(new KeyValuePair<(string, string, GrainId), (object?, long)>(key, current));
    }
}

/// <summary>
/// Grain state in memory (lost when the process exits): the embedded default and the test double of real storage.
/// Values are deep-copied in and out so a grain never shares objects with the store, and writes check the ETag.
/// </summary>
internal sealed class MemoryGrainStorage(string name, MemoryStorageBackend backend) : IGrainStorage
{
    public Task ReadStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState)
    {
        if (backend.TryRead(name, stateName, grainId, out var value, out var version))
        {
            grainState.State = DeepCopier<TState>.Copy((TState)value!);
            grainState.ETag = version.ToString(CultureInfo.InvariantCulture);
            grainState.RecordExists = true;
        }
        else
        {
            grainState.State = PersistentState<TState>.CreateDefault();
            grainState.ETag = null;
            grainState.RecordExists = false;
        }

        return Task.CompletedTask;
    }

    public Task WriteStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState)
    {
        var expected = ParseEtag(grainState.ETag);
        var copy = DeepCopier<TState>.Copy(grainState.State);
        if (!backend.TryWrite(name, stateName, grainId, copy, expected, out var stored))
        {
            throw Conflict("write", stateName, grainId, stored, grainState.ETag);
        }

        grainState.ETag = stored.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState)
    {
        if (!backend.TryClear(name, stateName, grainId, ParseEtag(grainState.ETag), out var stored))
        {
            throw Conflict("clear", stateName, grainId, stored, grainState.ETag);
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    private static long ParseEtag(string? etag) =>
        etag is null ? 0 : long.Parse(etag, NumberStyles.Integer, CultureInfo.InvariantCulture);

    private InconsistentStateException Conflict(string operation, string stateName, GrainId grainId, long stored, string? current) =>
        new($"Cannot {operation} state '{stateName}' of {grainId} in storage '{name}': it was changed since this activation read it (stored ETag {(stored == 0 ? "none" : stored)}, expected {current ?? "none"}).",
            stored == 0 ? null : stored.ToString(CultureInfo.InvariantCulture),
            current);
}
