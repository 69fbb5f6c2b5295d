# Sourced by bench scripts: berth network settings private to one benchmark run (a bridge,
# subnet inside 10.88.0.0/16, nft table and cgroup parent of its own), and the removal of
# everything berth made under them, so a benchmark leaves the host as it found it.

# private_network TAG OCTET: bridge b<TAG>0, subnet 10.88.<OCTET>.0/24, table berth_<TAG>.
private_network() {
    export BERTH_BRIDGE="b$1" BERTH_SUBNET="10.88.$2.0/24" \
        BERTH_NFT_TABLE="berth_$1" BERTH_CGROUP_PARENT="berth-$1"
}

# Removes the table, bridge, network state and cgroup parent of private_network's settings.
remove_private_network() {
    nft delete table ip "$BERTH_NFT_TABLE" 2>/dev/null || true
    ip link del "$BERTH_BRIDGE" 2>/dev/null || true
    rm -rf "/run/berth/networks/$BERTH_BRIDGE"
    rmdir /run/berth/networks /run/berth/netns /run/berth 2>/dev/null || true
    for c in /sys/fs/cgroup/*/"$BERTH_CGROUP_PARENT" /sys/fs/cgroup/unified/"$BERTH_CGROUP_PARENT"; do
        [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}
