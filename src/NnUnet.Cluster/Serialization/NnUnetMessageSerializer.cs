using System.Collections.Frozen;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using MessagePack;
using MessagePack.Resolvers;
using NnUnet.Cluster.Messages;

namespace NnUnet.Cluster.Serialization;

/// <summary>
/// Akka serializer for every <see cref="INnUnetMessage"/> (wire messages, journal events, snapshots): MessagePack,
/// contractless (records are serialised by property name, so adding a property stays readable; the messages holding an
/// <see cref="Sweeps.EpochMetrics"/> keep their flat shape, see <see cref="EpochMetricsFormatters"/>), with the manifest
/// being the type's short name. Bound in HOCON (see <see cref="Hosting.ClusterConfig"/>). Payloads are treated as
/// untrusted (<see cref="MessagePackSecurity.UntrustedData"/>: depth limits, collision-resistant hashing).
/// </summary>
public sealed class NnUnetMessageSerializer : SerializerWithStringManifest
{
    /// <summary>Akka serializer id (ids below 100 are Akka's own).</summary>
    public const int SerializerId = 3141;

    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard
        .WithResolver(CompositeResolver.Create(EpochMetricsFormatters.All, [ContractlessStandardResolver.Instance]))
        .WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>Every message type by manifest (its short name, unique across the assembly).</summary>
    public static readonly FrozenDictionary<string, Type> TypesByManifest = typeof(INnUnetMessage).Assembly.GetTypes()
        .Where(t => typeof(INnUnetMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
        .ToFrozenDictionary(t => t.Name, t => t, StringComparer.Ordinal);

    public NnUnetMessageSerializer(ExtendedActorSystem system) : base(system) { }

    public override int Identifier => SerializerId;

    public override string Manifest(object o)
    {
        var name = o.GetType().Name;
        if (o is not INnUnetMessage || !TypesByManifest.ContainsKey(name))
            throw new SerializationException($"{o.GetType().FullName} is not an nnU-Net cluster message");
        return name;
    }

    public override byte[] ToBinary(object obj)
    {
        if (obj is not INnUnetMessage) throw new SerializationException($"{obj.GetType().FullName} is not an nnU-Net cluster message");
        return MessagePackSerializer.Serialize(obj.GetType(), obj, Options);
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!TypesByManifest.TryGetValue(manifest, out var type))
            throw new SerializationException($"unknown nnU-Net message manifest '{manifest}'");
        try
        {
            return MessagePackSerializer.Deserialize(type, bytes, Options)
                   ?? throw new SerializationException($"nnU-Net message '{manifest}' deserialised to null");
        }
        catch (MessagePackSerializationException ex)
        {
            throw new SerializationException($"cannot read nnU-Net message '{manifest}': {ex.Message}", ex);
        }
    }
}
