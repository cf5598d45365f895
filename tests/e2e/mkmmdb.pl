#!/usr/bin/perl
# Write a small MaxMind DB for the tests: mkmmdb.pl OUT NETWORK=CONTINENT[:COUNTRY] ...
# (with Debian's libmaxmind-db-writer-perl). Reserved networks (loopback, documentation) are
# kept, since the tests use them.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my %types = (continent => 'map', code => 'utf8_string', country => 'map', iso_code => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 24, database_type => 'Gatehouse-Test',
    languages => ['en'], description => { en => 'Gatehouse test data' },
    map_key_type_callback => sub { $types{ $_[0] } },
    alias_ipv6_to_ipv4 => 1, remove_reserved_networks => 0);
my $out = shift @ARGV;
for my $arg (@ARGV) {
    my ($net, $cont, $country) = $arg =~ /^([^=]+)=([^:]+)(?::(.+))?$/ or die "bad $arg\n";
    my %rec = (continent => { code => $cont });
    $rec{country} = { iso_code => $country } if defined $country;
    $tree->insert_network($net, \%rec);
}
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
