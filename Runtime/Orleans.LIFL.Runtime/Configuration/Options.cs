using Microsoft.Extensions.Options;

namespace Orleans.LIFL.Configuration;

/// <summary>Which cluster a silo or client belongs to.</summary>
public sealed class ClusterOptions
{
    public const string DefaultClusterId = "dev";

    /// <summary>Silos and clients with different cluster ids never talk to each other.</summary>
    public string ClusterId { get; set; } = DefaultClusterId;

    /// <summary>Names the service across deployments (grain state is keyed by it).</summary>
    public string ServiceId { get; set; } = DefaultClusterId;

    /// <summary>
    /// The shared secret every silo and client of the cluster proves it knows when it connects (HMAC challenge;
    /// never sent). Required when silos talk over TCP; at least 16 characters.
    /// </summary>
    public string? Secret { get; set; }

    public override string ToString() => $"cluster {ClusterId} (service {ServiceId})";
}

/// <summary>Identity of one silo.</summary>
public sealed class SiloOptions
{
    /// <summary>A name for logs and the dashboard; defaults to the machine name and endpoint.</summary>
    public string? SiloName { get; set; }
}

/// <summary>Idle collection: how long an activation may stay unused before it is deactivated (scale to zero).</summary>
public sealed class GrainCollectionOptions
{
    public static readonly TimeSpan DefaultCollectionQuantum = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan DefaultCollectionAge = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan DefaultDeactivationTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How often the collector looks for idle activations.</summary>
    public TimeSpan CollectionQuantum { get; set; } = DefaultCollectionQuantum;

    /// <summary>Idle time after which an activation is collected, unless its class says otherwise.</summary>
    public TimeSpan CollectionAge { get; set; } = DefaultCollectionAge;

    /// <summary>Collection age per grain class, keyed by the class's full name; overrides [CollectionAgeLimit].</summary>
    public Dictionary<string, TimeSpan> ClassSpecificCollectionAge { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How long OnDeactivateAsync may run before the runtime gives up waiting for it.</summary>
    public TimeSpan DeactivationTimeout { get; set; } = DefaultDeactivationTimeout;
}

/// <summary>Grain call settings.</summary>
public sealed class MessagingOptions
{
    public static readonly TimeSpan DefaultResponseTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a caller waits for a response before the call fails (per method with [ResponseTimeout]).</summary>
    public TimeSpan ResponseTimeout { get; set; } = DefaultResponseTimeout;

    /// <summary>How many times a call may be re-routed (stale directory entry, activation moved) before it fails.</summary>
    public int MaxForwardCount { get; set; } = 3;
}

internal sealed class GrainCollectionOptionsValidator : IValidateOptions<GrainCollectionOptions>
{
    public ValidateOptionsResult Validate(string? name, GrainCollectionOptions options)
    {
        var errors = new List<string>();
        if (options.CollectionQuantum <= TimeSpan.Zero)
        {
            errors.Add($"GrainCollectionOptions.CollectionQuantum must be positive (got {options.CollectionQuantum}).");
        }

        if (options.CollectionAge <= TimeSpan.Zero)
        {
            errors.Add($"GrainCollectionOptions.CollectionAge must be positive (got {options.CollectionAge}).");
        }

        foreach (var (grainClass, age) in options.ClassSpecificCollectionAge)
        {
            if (age <= TimeSpan.Zero)
            {
                errors.Add($"GrainCollectionOptions.ClassSpecificCollectionAge[{grainClass}] must be positive (got {age}).");
            }
        }

        if (options.DeactivationTimeout <= TimeSpan.Zero)
        {
            errors.Add($"GrainCollectionOptions.DeactivationTimeout must be positive (got {options.DeactivationTimeout}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class MessagingOptionsValidator : IValidateOptions<MessagingOptions>
{
    public ValidateOptionsResult Validate(string? name, MessagingOptions options)
    {
        var errors = new List<string>();
        if (options.ResponseTimeout <= TimeSpan.Zero)
        {
            errors.Add($"MessagingOptions.ResponseTimeout must be positive (got {options.ResponseTimeout}).");
        }

        if (options.MaxForwardCount < 0)
        {
            errors.Add($"MessagingOptions.MaxForwardCount must not be negative (got {options.MaxForwardCount}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class ClusterOptionsValidator : IValidateOptions<ClusterOptions>
{
    public const int MinimumSecretLength = 16;

    public ValidateOptionsResult Validate(string? name, ClusterOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterId))
        {
            errors.Add("ClusterOptions.ClusterId must not be empty.");
        }

        if (string.IsNullOrWhiteSpace(options.ServiceId))
        {
            errors.Add("ClusterOptions.ServiceId must not be empty.");
        }

        if (options.Secret is { Length: < MinimumSecretLength })
        {
            errors.Add($"ClusterOptions.Secret must be at least {MinimumSecretLength} characters.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
